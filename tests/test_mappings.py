"""mappings: ICD hierarchies, GEMs, CCS/CCSR, procedures, RxNorm and DDI pairs, code systems.

Runs against the real vocabularies shipped by the installed packages; the ICD-10-CM index
is built once into the user's cache (seconds) and loaded from it afterwards.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mappings import _cache, _ddi_rules, ccs, gem, icd, procedures, rxnorm
from mappings import codesystems as cs


@pytest.fixture(scope="module")
def h10():
    return icd.icd10cm()


@pytest.fixture(scope="module")
def h9():
    return icd.icd9cm()


# --------------------------------------------------------------------------- ICD-10-CM
def test_icd10_rollup_of_a_billable_code(h10):
    assert h10.rollup("E11.65") == {
        "chapter": "4", "block": "E08-E13", "3char": "E11", "4char": "E11.6", "billing": "E11.65",
    }
    assert h10.rollup("e1165") == h10.rollup("E11.65")  # undotted, lower case
    assert h10.rollup(" E11.65 ")["billing"] == "E11.65"


def test_icd10_rollup_of_headers_and_short_codes(h10):
    assert h10.rollup("E11") == {"chapter": "4", "block": "E08-E13", "3char": "E11"}
    assert h10.rollup("E11.6") == {"chapter": "4", "block": "E08-E13", "3char": "E11", "4char": "E11.6"}
    assert h10.rollup("I10") == {"chapter": "9", "block": "I10-I1A", "3char": "I10", "billing": "I10"}
    seven = h10.rollup("S72.001A")
    assert seven["chapter"] == "19" and seven["3char"] == "S72" and seven["4char"] == "S72.0"
    assert seven["billing"] == "S72.001A"
    assert h10.rollup("not a code") == {} and h10.rollup(None) == {}


def test_icd10_levels_and_counts(h10):
    counts = h10.level_counts()
    assert counts["chapter"] == 22
    assert 280 <= counts["block"] <= 320
    assert 1_900 <= counts["3char"] <= 1_950
    assert counts["billing"] > 74_000
    assert h10.nodes("chapter")[0] == "1" and h10.nodes("chapter")[-1] == "22"
    assert "E08-E13" in h10.nodes("block") and "E11.6" in h10.nodes("4char")
    with pytest.raises(ValueError):
        h10.nodes("subchapter")


def test_icd10_descriptions_and_validity(h10):
    assert h10.description("E11.65") == "Type 2 diabetes mellitus with hyperglycemia"
    assert h10.node_description("block", "E08-E13").startswith("Diabetes mellitus")
    assert "Endocrine" in h10.node_description("chapter", "4")
    assert h10.node_description("4char", "E11.6").startswith("Type 2 diabetes mellitus")
    assert h10.is_valid("I50.9") and h10.is_billable("I50.9")
    assert h10.is_valid("I50") and not h10.is_billable("I50")
    assert not h10.is_valid("I50.999") and h10.normalize("XYZ") is None
    assert h10.normalize("i509") == "I50.9"


def test_every_billing_code_rolls_up_to_all_levels(h10, h9):
    for hierarchy in (h10, h9):
        blocks, chapters = set(hierarchy.nodes("block")), set(hierarchy.nodes("chapter"))
        for code in hierarchy.billing_codes()[::97]:
            up = hierarchy.rollup(code)
            assert up["billing"] == code
            assert up["chapter"] in chapters and up["block"] in blocks
            assert code.replace(".", "").startswith(up["3char"])


def test_icd10_search(h10):
    hits = h10.search("heart failure", limit=5)
    assert hits[0] == ("I50.9", "Heart failure, unspecified")
    assert [c for c, _ in h10.search("E11.6", limit=3)] == ["E11.6", "E11.61", "E11.610"]
    assert h10.search("type 2 diabetes hyperglycemia")[0][0] == "E11.65"
    assert h10.search("") == [] and h10.search("zzzqqq") == []


def test_who_icd10_url_uses_icd10cm_lookups():
    assert icd.hierarchy_for("http://hl7.org/fhir/sid/icd-10") is icd.icd10cm()
    assert icd.hierarchy_for("urn:oid:2.16.840.1.113883.6.90") is icd.icd10cm()
    assert icd.hierarchy_for(cs.ICD9CM) is icd.icd9cm()
    assert icd.hierarchy_for(cs.SNOMED) is None and icd.hierarchy_for(None) is None


# --------------------------------------------------------------------------- ICD-9-CM
def test_icd9_rollup(h9):
    assert h9.rollup("428.0") == {
        "chapter": "390-459", "block": "420-429", "3char": "428", "4char": "428.0", "billing": "428.0",
    }
    assert h9.rollup("4280") == h9.rollup("428.0")
    assert h9.rollup("V45.81") == {
        "chapter": "V01-V91", "block": "V40-V49", "3char": "V45", "4char": "V45.8", "billing": "V45.81",
    }
    assert h9.rollup("E880.9") == {
        "chapter": "E000-E999", "block": "E880-E888", "3char": "E880", "4char": "E880.9", "billing": "E880.9",
    }
    assert h9.rollup("e8809") == h9.rollup("E880.9")
    assert h9.rollup("250") == {"chapter": "240-279", "block": "249-259", "3char": "250"}


def test_icd9_chapter_without_subchapters_is_its_own_block(h9):
    up = h9.rollup("280.9")
    assert up["chapter"] == "280-289" and up["block"] == "280-289"


def test_icd9_counts_descriptions_and_leading_zeros(h9):
    counts = h9.level_counts()
    assert counts["chapter"] == 19  # 17 chapters + V and E supplementary classifications
    assert counts["billing"] == 14_567  # CMS v32
    assert h9.description("428.0") == "Congestive heart failure, unspecified"
    assert h9.description("V45.81") == "Aortocoronary bypass status"
    assert h9.normalize("8.45") == "008.45"  # spreadsheet-stripped leading zeros
    assert h9.search("aortocoronary bypass status")[0][0] == "V45.81"


# --------------------------------------------------------------------------- GEMs, CCS
def test_gem_lookups():
    assert gem.icd9_to_icd10("250.00") == ["E11.9"]
    assert gem.icd9_to_icd10("25000") == ["E11.9"]
    assert "250.00" in gem.icd10_to_icd9("E11.9")
    assert gem.icd9_to_icd10("428.0") == ["I50.9"]
    assert "428.0" in gem.icd10_to_icd9("I50.9")
    assert gem.icd9_to_icd10("V45.81") == ["Z95.1"]
    assert gem.icd9_to_icd10("nonsense") == [] and gem.icd10_to_icd9(None) == []
    entry = gem.gem_entries("250.00", direction="9to10")[0]
    assert entry.target == "E11.9" and entry.approximate in (True, False)
    with pytest.raises(ValueError):
        gem.gem_entries("250.00", direction="sideways")


def test_ccs_and_ccsr():
    assert ccs.ccs_for_icd9("428.0") == "108"
    assert ccs.ccs_for_icd9("4280") == "108"
    assert ccs.ccsr_for_icd10("I50.9") == "CIR019"
    assert ccs.ccsr_for_icd10("I509") == "CIR019"
    assert ccs.ccsr_for_icd10("I50") == "CIR019"  # header code: all its billable codes agree
    assert ccs.category_for(cs.ICD9CM, "428.0") == "CCS:108"
    assert ccs.category_for("urn:oid:2.16.840.1.113883.6.90", "I50.9") == "CCSR:CIR019"
    assert ccs.category_for(cs.SNOMED, "84114007") is None
    assert ccs.category_description("CCS:108") == "Congestive heart failure; nonhypertensive"
    assert ccs.category_description("CCSR:CIR019") == "Heart failure"
    assert ccs.category_description("108") == ccs.category_description("CCS:108")
    assert ccs.category_description("CCSR:NOPE999") is None
    labels = ccs.ccsr_categories()
    assert len(labels) > 500 and all(labels.values())
    assert len(ccs.ccs_categories()) > 250


def test_procedure_descriptions():
    assert procedures.procedure_description(cs.ICD10PCS, "0DTJ4ZZ").startswith("Resection of Appendix")
    assert procedures.procedure_description("http://www.icd10data.com/icd10pcs", "0dtj4zz") is not None
    assert procedures.procedure_description(cs.ICD9CM_PROC, "45.13") == "Other endoscopy of small intestine"
    assert procedures.procedure_description(cs.ICD9CM_PROC, "4513") == "Other endoscopy of small intestine"
    assert procedures.procedure_description(cs.ICD9CM_PROC, "428.0") is None  # a diagnosis
    assert procedures.procedure_description(cs.SNOMED, "80146002") is None
    assert len(procedures.pcs_codes()) > 70_000 and len(procedures.icd9_procedure_codes()) > 3_800


# --------------------------------------------------------------------------- RxNorm, DDI
def test_rxnorm_ingredients_table():
    table = rxnorm.ingredients()
    assert len(table) >= 150
    assert table["6809"].name == "metformin" and table["29046"].name == "lisinopril"
    for rxcui, name in [("83367", "atorvastatin"), ("11289", "warfarin"), ("1191", "aspirin"), ("703", "amiodarone"),
                        ("32968", "clopidogrel"), ("4603", "furosemide"), ("11124", "vancomycin")]:
        assert table[rxcui].name == name
    assert all(i.drug_class for i in table.values())


@pytest.mark.parametrize("code, display, expected", [
    ("6809", None, "6809"),                                   # ingredient RxCUI
    ("314076", "lisinopril 10 MG Oral Tablet", "29046"),      # product RxCUI
    ("99999999", "metoprolol succinate 50 MG Extended Release Oral Tablet", "6918"),
    (None, "Lasix 40 mg IV", "4603"),                          # brand
    ("", "COUMADIN", "11289"),                                 # case-insensitive brand
    (None, "paracetamol 500 mg", "161"),                       # synonym
    ("atorvastatin", None, "83367"),                           # name in the code field
    (None, "Insulin Regular, Human 100 UNT/ML Injectable Solution", "253182"),
    (None, "unknownium 5 mg", None),
    (None, None, None),
])
def test_ingredient_for(code, display, expected):
    assert rxnorm.ingredient_for(code, display) == expected


def test_combination_products_keep_every_ingredient():
    assert rxnorm.ingredients_for("10831") == ["10180", "10829"]
    assert rxnorm.ingredients_for(None, "Percocet 5/325") == ["161", "7804"]
    assert rxnorm.ingredient_for("10831") == "10180"


def test_ddi_pairs_symmetry_and_known_pairs():
    pairs = rxnorm.ddi_pairs()
    assert 100 <= len(pairs) <= 600
    assert all(len(p) == 2 for p in pairs)
    known = [("11289", "5640"),   # warfarin - ibuprofen
             ("11289", "703"),    # warfarin - amiodarone
             ("36567", "21212"),  # simvastatin - clarithromycin
             ("6851", "10829"),   # methotrexate - trimethoprim
             ("32968", "7646"),   # clopidogrel - omeprazole
             ("136411", "4917"),  # sildenafil - nitroglycerin
             ("7804", "6470"),    # oxycodone - lorazepam
             ("42351", "5640"),   # lithium - ibuprofen
             ("29046", "9997")]   # lisinopril - spironolactone
    for a, b in known:
        assert rxnorm.interacts(a, b) and rxnorm.interacts(b, a)
    assert not rxnorm.interacts("161", "6809")  # acetaminophen - metformin
    assert not rxnorm.interacts("11289", "11289")
    info = rxnorm.interaction("21212", "36567")
    assert info.severity == "contraindicated" and "Phansalkar" in info.source
    severe = rxnorm.ddi_pairs(severities=["contraindicated"])
    assert severe < pairs and frozenset(("36567", "21212")) in severe
    with pytest.raises(ValueError):
        rxnorm.ddi_pairs(severities=["mild"])


def test_ddi_pairs_only_name_known_ingredients_and_match_the_rules():
    known = rxnorm.ingredients()
    assert all(r in known for pair in rxnorm.ddi_pairs() for r in pair)
    shipped = (_ddi_rules.SHIPPED / "ddi_pairs.csv").read_text(encoding="utf-8")
    assert shipped == _ddi_rules.render(), "ddi_pairs.csv is stale: run python -m mappings._ddi_rules"


def test_ddi_matrix():
    order = ["11289", "5640", "703", "161", "not-an-rxcui"]
    m = rxnorm.ddi_matrix(order)
    assert m.shape == (5, 5) and m.dtype == np.float32
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 0)
    assert m[0, 1] == 1 and m[0, 2] == 1 and m[1, 2] == 0 and m[3].sum() == 0 and m[4].sum() == 0


# --------------------------------------------------------------------------- code systems
@pytest.mark.parametrize("url, expected", [
    ("http://hl7.org/fhir/sid/icd-10-cm", cs.ICD10CM),
    ("urn:oid:2.16.840.1.113883.6.90", cs.ICD10CM),
    ("2.16.840.1.113883.6.90", cs.ICD10CM),
    ("HTTPS://hl7.org/fhir/sid/ICD-10-CM/", cs.ICD10CM),
    ("http://hl7.org/fhir/sid/icd10cm", cs.ICD10CM),
    ("ICD-10-CM", cs.ICD10CM),
    ("http://hl7.org/fhir/sid/icd-10", cs.ICD10),
    ("urn:oid:2.16.840.1.113883.6.103", cs.ICD9CM),
    ("urn:oid:2.16.840.1.113883.6.104", cs.ICD9CM_PROC),
    ("http://hl7.org/fhir/sid/icd-9-cm/", cs.ICD9CM),
    ("urn:oid:2.16.840.1.113883.6.4", cs.ICD10PCS),
    ("http://www.icd10data.com/icd10pcs", cs.ICD10PCS),
    ("https://www.cms.gov/Medicare/Coding/ICD10", cs.ICD10PCS),
    ("urn:oid:2.16.840.1.113883.6.88", cs.RXNORM),
    ("https://www.nlm.nih.gov/research/umls/rxnorm/", cs.RXNORM),
    ("urn:oid:2.16.840.1.113883.6.96", cs.SNOMED),
    ("http://snomed.info/sct/731000124108", cs.SNOMED),
    ("http://loinc.org/", cs.LOINC),
    ("http://example.org/local-codes", "http://example.org/local-codes"),
    ("  ", None),
    (None, None),
])
def test_canonical_system(url, expected):
    assert cs.canonical_system(url) == expected


def test_constants():
    assert cs.ICD9CM_PROC == cs.ICD9CM
    assert cs.ICD10CM != cs.ICD10


@pytest.mark.parametrize("code, expected", [
    ("E11.65", cs.ICD10CM), ("E1165", cs.ICD10CM), ("I10", cs.ICD10CM), ("S72.001A", cs.ICD10CM),
    ("428.0", cs.ICD9CM), ("4280", cs.ICD9CM), ("V45.81", cs.ICD9CM), ("V4581", cs.ICD9CM),
    ("E880.9", cs.ICD9CM), ("250", cs.ICD9CM),
    ("hello", None), ("", None), (None, None), ("12", None),
])
def test_detect_icd_system(code, expected):
    assert cs.detect_icd_system(code) == expected


# --------------------------------------------------------------------------- cache
def test_cache_rebuilds_corrupt_files_and_survives_a_read_only_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_ASSIST_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"value": 42}

    assert _cache.load_or_build("unit", ("numpy",), build)["value"] == 42
    assert _cache.load_or_build("unit", ("numpy",), build)["value"] == 42
    assert len(calls) == 1  # second call read the cache
    path = _cache.cache_path("unit", ("numpy",))
    path.write_bytes(b"\x1f\x8b garbage")
    assert _cache.load_or_build("unit", ("numpy",), build)["value"] == 42
    assert len(calls) == 2
    with gzip.open(path, "rt") as fh:
        assert json.load(fh)["value"] == 42
    monkeypatch.setenv("FHIR_ASSIST_CACHE_DIR", str(tmp_path / "file" / "sub"))
    (tmp_path / "file").write_text("not a directory")
    assert _cache.load_or_build("unit", ("numpy",), build)["value"] == 42  # no cache, still works


def test_cache_is_safe_when_processes_race(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, time
        os.environ["FHIR_ASSIST_CACHE_DIR"] = {str(tmp_path)!r}
        from mappings import _cache
        def build():
            time.sleep(0.3)
            return {{"rows": list(range(50000))}}
        out = _cache.load_or_build("race", ("numpy",), build)
        sys.exit(0 if out["rows"][-1] == 49999 else 1)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    with gzip.open(_cache_path_in(tmp_path), "rt") as fh:
        assert json.load(fh)["rows"][-1] == 49999


def _cache_path_in(directory):
    matches = list(directory.glob("race-*.json.gz"))
    assert len(matches) == 1
    return matches[0]
