"""MERA as the coder and LAMO as the medication recommender behind `serve --models DIR`: the same
hooks answered over HTTP with the same card shapes, MERA's EOV cut on the coding card, LAMO's
interaction control, and write-back of MERA's codes to the real FHIR server.

The models are the smallest that exercise every stage (one epoch on 60 patients); what they
suggest is not judged here, only that the service serves it as it serves the other models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request, encounters_of, group_by_patient
from fhir_assist.cli import main as cli_main
from tests.cds_rules import assert_valid_response, validate_discovery
from tests.conftest import _stop_process, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DISCHARGE = "coding-suggestions-encounter-discharge"
ORDER_SIGN = "medication-change-order-sign"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-serve-cohort")
    assert cli_main(["synth", "--patients", "60", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def lm_models(cohort, tmp_path_factory):
    """A models directory whose coder is MERA and whose medication recommender is LAMO."""
    root = tmp_path_factory.mktemp("lm-serve")
    base = root / "base"
    assert cli_main(["train", "lm-base", "--data", str(cohort), "--out", str(base),
                     "--layers", "1", "--width", "64", "--steps", "20"]) == 0
    import torch

    from fhir_assist.recipes import lamo, mera
    from model_zoo.llm.fit import FitConfig

    models = root / "models"
    one_epoch = FitConfig(epochs=1).to_dict()
    options = dict(base_path=str(base), lora_rank=4, seed=0, device=torch.device("cpu"), progress=False)
    # the recipes' own stages, each cut to a few steps (the CLI test trains with their defaults)
    mera.train(str(cohort), str(models / "icd-ranker"), **options,
               config=mera.MeraConfig(fit=one_epoch, memorisation_steps=20, memorisation_sample=20))
    lamo.train(str(cohort), str(models / "micron"), **options, config=lamo.LamoConfig(fit=one_epoch))
    return models


@pytest.fixture(scope="module")
def patients(cohort):
    from fhir_assist.adapter.files import iter_resources

    by_patient = group_by_patient(iter_resources(cohort))
    usable = [pid for pid, items in sorted(by_patient.items())
              if len(encounters_of(items)) >= 2 and any(r["resourceType"] == "MedicationRequest" for r in items)]
    assert len(usable) >= 5
    return by_patient, usable


def test_mera_calibration_for_serving_is_stored(lm_models):
    config = json.loads((lm_models / "icd-ranker" / "config.json").read_text())
    serving = config["serving"]
    assert serving["validation_visits"] > 0 and serving["calibration"]["a"] > 0
    assert serving["precision_curve"], "the write-back floor needs the validation precision curve"


def _serve(models: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "fhir_assist.cli", "serve", "--no-auth", "--port", str(port),
                             "--models", str(models)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=env, cwd=ROOT)


def _wait_ready(proc: subprocess.Popen, base: str, log: Path) -> dict:
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            response = requests.get(f"{base}/readyz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "serve --models did not become ready: " + log.read_text()[-3000:]
        time.sleep(0.3)


def test_serve_answers_both_hooks_with_the_language_models(lm_models, patients, tmp_path):
    by_patient, usable = patients
    port, log = free_port(), tmp_path / "serve.log"
    proc = _serve(lm_models, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = json.dumps(_wait_ready(proc, base, log))
        assert "mera@" in ready and "lamo@" in ready, ready
        discovery = requests.get(f"{base}/cds-services", timeout=30).json()
        assert not validate_discovery(discovery)
        described = {entry["id"]: entry["description"] for entry in discovery["services"]}
        assert "MERA-style language model" in described[DISCHARGE] and "ranker" not in described[DISCHARGE]
        assert "LAMO-style language model" in described[ORDER_SIGN] and "MICRON" not in described[ORDER_SIGN]
        coding_cards, change_cards = [], []
        for pid in usable[:6]:
            for service_id, found in ((DISCHARGE, coding_cards), (ORDER_SIGN, change_cards)):
                body = build_request(BY_ID[service_id], by_patient[pid], pid)
                response = requests.post(f"{base}/cds-services/{service_id}", json=body, timeout=120)
                assert response.status_code == 200, response.text[:500]
                assert_valid_response(response.json())
                found += [c for c in response.json()["cards"] if "suggestions" in c]
    finally:
        _stop_process(proc, timeout=30)
    assert coding_cards, "the MERA coder suggested no codes"
    for card in coding_cards:
        assert "end-of-visit token" in card["detail"] and "mera@" in card["source"]["label"]
        codes = [s["actions"][0]["resource"]["code"]["coding"][0] for s in card["suggestions"]]
        assert all(c["system"].startswith("http://hl7.org/fhir/sid/icd-") for c in codes)
        assert any(s.get("isRecommended") for s in card["suggestions"])       # at least one above EOV
    changes = [c for c in change_cards if c["summary"].startswith("Consider medication changes")]
    assert changes, "LAMO suggested no medication change for any of the patients"
    for card in changes:
        assert "LAMO-style language model" in card["detail"] and "lamo@" in card["source"]["label"]
        assert all(s["label"].startswith(("Start ", "Stop ")) for s in card["suggestions"])


def test_lamo_leaves_out_the_lower_scored_drug_of_an_interacting_pair(lm_models):
    import numpy as np

    from fhir_assist.suggest.lamo import LamoRecommender
    from mappings import rxnorm

    lamo = LamoRecommender.load(lm_models / "micron")
    pairs = [(i, j) for i, a in enumerate(lamo.rxcuis) for j, b in enumerate(lamo.rxcuis)
             if i < j and rxnorm.interacts(a, b)]
    if not pairs:
        pytest.skip("no interacting pair among the tiny model's medications")
    i, j = pairs[0]
    probs = np.full(len(lamo.rxcuis), 0.01)
    probs[[i, j]] = [0.9, 0.8]
    kept, stops = lamo._without_interactions(np.array([i, j]), probs)
    assert kept == [i] and stops == {lamo.rxcuis[j]: lamo.rxcuis[i]}


@pytest.mark.integration
def test_mera_codes_are_written_back_as_provisional_conditions(lm_models, patients, fhir_base_url):
    from fhir_assist.suggest.model_set import load_models
    from fhir_assist.own_resources import is_our_suggestion, verification_status
    from tests.test_cds_integration import call, service
    from tests.test_write_back_integration import _load_at_discharge

    by_patient, usable = patients
    pid = usable[0]
    renamed = json.loads(json.dumps(by_patient[pid]).replace(pid, f"{pid}lm"))
    body = _load_at_discharge(fhir_base_url, renamed, f"{pid}lm")
    # The tiny model's codes rarely reach half precision on validation: every recommended code
    # above the lowest validation score is written, which is what this test needs to see.
    with service(load_models(str(lm_models)), allowed_fhir_servers=(fhir_base_url,),
                 write_back_precision=0.0) as (base_url, _app):
        response = call(base_url, DISCHARGE, body)
    assert response.status_code == 200, response.text[:500]
    card = response.json()["cards"][0]
    assert "recorded on the FHIR server as provisional Conditions" in card["detail"], card["detail"]
    found = requests.get(f"{fhir_base_url}/Condition", params={"patient": f"{pid}lm", "_count": 200},
                         timeout=30).json()
    ours = [e["resource"] for e in found.get("entry", []) if is_our_suggestion(e["resource"])]
    assert ours and all(verification_status(c) == "provisional" for c in ours)
    confirmed = {s["label"].split()[1] for s in card["suggestions"] if s["label"].startswith("Confirm ")}
    assert confirmed and confirmed <= {c["code"]["coding"][0]["code"] for c in ours}
