import json
from pathlib import Path

import pytest

from fhir_assist.fhir.tokens import canonical_token, canonical_tokens, code_token, split_token

DEMO_MODELS = Path(__file__).resolve().parents[1] / "fhir_assist" / "demo_models"


def test_one_form_for_a_code():
    assert code_token("icd10", "E11.65") == "icd10:E11.65"
    assert split_token("icd10:E11.65") == ("icd10", "E11.65")
    assert split_token("icd9proc:45.13") == ("icd9proc", "45.13")
    assert split_token("CCSR:END005") == ("CCSR", "END005")


def test_system_urls_keep_their_colons():
    assert split_token("http://example.org/local-codes:ABC-1") == ("http://example.org/local-codes", "ABC-1")
    assert split_token("urn:oid:1.2.3:X9") == ("urn:oid:1.2.3", "X9")


def test_tokens_without_a_system():
    assert split_token("6809") is None            # a medication token is its RxCUI
    assert split_token("[OOV]") is None


@pytest.mark.parametrize("legacy, canonical", [
    ("icd10|E11.65", "icd10:E11.65"), ("icd9|428.0", "icd9:428.0"), ("icd10|E11", "icd10:E11"),
])
def test_legacy_label_tokens_are_read_in_the_canonical_form(legacy, canonical):
    assert canonical_token(legacy) == canonical
    assert split_token(legacy) == tuple(canonical.split(":", 1))


@pytest.mark.parametrize("token", ["icd10:E11.65", "CCS:49", "6809", "[OOV]", "a|b|c", "Mixed|X",
                                   "icd10|E11:x"])
def test_other_tokens_are_left_alone(token):
    assert canonical_token(token) == token


def test_the_bundled_label_vocabularies_all_normalise():
    files = sorted(DEMO_MODELS.glob("*/vocabularies/labels-*.json"))
    assert files, "the bundled demo models have label vocabularies"
    for file in files:
        tokens = json.loads(file.read_text())["tokens"]
        normal = canonical_tokens(tokens)
        assert not any("|" in t for t in normal), file
        assert len(set(normal)) == len(tokens), file      # no two labels collapse into one


def test_a_legacy_artifact_loads_with_canonical_labels():
    from fhir_assist.suggest.coding import CodingSuggester

    suggester = CodingSuggester.load("icd-ranker")
    heads = suggester.labels.tokens
    assert all(":" in t and "|" not in t for head in heads.values() for t in head)
    assert suggester.labels.column("3char", "icd10:E11") is not None
