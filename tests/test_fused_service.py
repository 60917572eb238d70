"""The fused coding list, end to end: `train coding-fusion` on the bundled ranker and text
coder, then discharge calls answered from one calibrated list with each source's evidence."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from fhir_assist.cds import create_app
from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.cds.models import BUNDLED_DIR, FUSION, load_models
from fhir_assist.cli import main
from fhir_assist.config import Settings
from fhir_assist.store import MemoryStore
from model_zoo.fusion import FEATURES

DISCHARGE = "coding-suggestions-encounter-discharge"


@pytest.fixture(scope="module")
def fused_models(tmp_path_factory, small_cohort_dir):
    root = tmp_path_factory.mktemp("fused-models")
    for name in ("micron", "icd-ranker", "text-coder"):
        shutil.copytree(BUNDLED_DIR / name, root / name)
    code = main(["train", "coding-fusion", "--ranker", str(root / "icd-ranker"),
                 "--text-coder", str(root / "text-coder"), "--data", str(small_cohort_dir),
                 "--out", str(root / FUSION)])
    assert code == 0
    models = load_models(str(root))
    assert FUSION in models.models, models.errors
    return models


def test_fusion_artifact_weights_every_source(fused_models):
    fusion = fused_models.get(FUSION).suggester
    weights = fusion.stacker.to_dict()["weights"]
    assert list(weights) == list(FEATURES)
    # Recorded codes of earlier visits recur in this cohort: the history must count.
    assert weights["problem_list"] > 0 or weights["previous_visit"] > 0
    assert weights["ranker_logit"] > 0
    assert fusion.fits(fused_models.get("icd-ranker").suggester, fused_models.get("text-coder").suggester)
    assert 0 < fusion.write_floor(0.5) < 1


def test_discharge_card_is_one_fused_list_cut_per_encounter(fused_models, hook_cohort):
    by_patient, usable = hook_cohort
    app = create_app(Settings(no_auth=True, evidence=False, write_back=False), store=MemoryStore(),
                     models=fused_models)
    client = app.test_client()
    lengths, details = [], []
    for pid in usable[:6]:
        body = build_request(BY_ID[DISCHARGE], by_patient[pid], pid)
        response = client.post(f"/cds-services/{DISCHARGE}", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        (card,) = response.get_json()["cards"]
        assert "expected recall of" in card["detail"]
        recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
        assert recommended and len(recommended) == len(card["suggestions"])
        # The evidence column names the sources that spoke for each code.
        assert "ranker: score" in card["detail"]
        details.append(card["detail"])
        lengths.append(int(re.search(r"The (\d+) recommended code", card["detail"]).group(1)))
        assert len(recommended) == min(20, lengths[-1])
    assert any("history: recorded at the previous visit" in d or "history: on the problem list" in d
               for d in details)
    # Cut per encounter, not one K for all.
    assert len(set(lengths)) > 1, lengths
