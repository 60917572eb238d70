"""`fhir-assist serve` (the real command, its own process, default logging) answers a cohort's
hook calls, with and without prefetch, feedback, failing FHIR reads and bad requests; then all
of its log output is searched for that cohort's patient names, identifiers, ids and note text."""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests

from fhir_assist.cds.catalog import SERVICES
from fhir_assist.cds.hook_requests import build_request

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _phi_of(resources: list[dict]) -> set[str]:
    """What must never be logged: names, identifiers, patient/encounter ids, note sentences."""
    out: set[str] = set()
    for r in resources:
        if r["resourceType"] == "Patient":
            out.add(r["id"])
            for name in r.get("name") or []:
                out.update(n for n in [name.get("family"), *(name.get("given") or [])] if n and len(n) > 3)
            out.update(i["value"] for i in r.get("identifier") or [] if len(i.get("value", "")) > 4)
        elif r["resourceType"] == "Encounter":
            out.add(r["id"])
        elif r["resourceType"] == "DocumentReference":
            for content in r.get("content") or []:
                data = (content.get("attachment") or {}).get("data")
                if data:
                    text = base64.b64decode(data).decode("utf-8", "replace")
                    out.update(s.strip() for s in re.split(r"[.\n]", text) if len(s.strip()) > 30)
    return out


@pytest.fixture(scope="module")
def patients(hook_cohort, fhir_base_url):
    by_patient, usable = hook_cohort
    chosen = usable[:6]
    resources = [r for pid in chosen for r in by_patient[pid]]
    resources.sort(key=lambda r: {"Patient": 0, "Encounter": 1}.get(r["resourceType"], 2))
    for start in range(0, len(resources), 50):
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources[start:start + 50]]}
        requests.post(fhir_base_url, json=batch, headers={"Content-Type": "application/fhir+json"},
                      timeout=60).raise_for_status()
    return by_patient, chosen


def test_no_patient_data_in_the_service_log(patients, fhir_base_url, redis_url, tmp_path):
    by_patient, chosen = patients
    from tests.conftest import free_port

    log_path = tmp_path / "serve.log"
    port = free_port()       # serve may run several processes: the port is chosen here
    env = {**os.environ, "PYTHONPATH": ROOT, "FHIR_ASSIST_ALLOWED_FHIR_SERVERS": fhir_base_url,
           "FHIR_ASSIST_EVIDENCE": "false"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fhir_assist.cli", "serve", "--no-auth", "--port", str(port),
                                 "--redis-url", redis_url], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        base_url = None
        deadline = time.monotonic() + 120
        while base_url is None and time.monotonic() < deadline and proc.poll() is None:
            ready = "discovery at" in log_path.read_text(errors="replace") and _answers(port)
            base_url = f"http://127.0.0.1:{port}" if ready else time.sleep(0.3)
        assert base_url, log_path.read_text(errors="replace")[-2000:]
        dead = "http://127.0.0.1:9/fhir"
        answered = 0
        for pid in chosen:
            for entry in SERVICES:
                for options in ({}, {"prefetch": False, "fhir_server": fhir_base_url, "access_token": "t"},
                                {"prefetch": False, "fhir_server": dead, "access_token": "t"}):
                    body = build_request(entry, by_patient[pid], pid, **options)
                    r = requests.post(f"{base_url}/cds-services/{entry.id}", json=body, timeout=120)
                    assert r.status_code in (200, 412), r.text[:300]
                    answered += r.status_code == 200
                    if r.status_code == 200 and r.json()["cards"]:
                        card = r.json()["cards"][0]
                        requests.post(f"{base_url}/cds-services/{entry.id}/feedback", timeout=30, json={
                            "feedback": [{"card": card["uuid"], "outcome": "overridden",
                                          "outcomeTimestamp": "2026-11-23T10:00:00Z"}]})
                bad = build_request(entry, by_patient[pid], pid)
                bad["context"]["patientId"] = f"{pid} {uuid.uuid4()}"
                assert requests.post(f"{base_url}/cds-services/{entry.id}", json=bad, timeout=30).status_code == 400
        assert answered >= len(chosen) * len(SERVICES)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log_path.read_text(errors="replace")
    assert "hookInstance=" in text, "the service logged its calls"
    leaked = sorted(p for pid in chosen for p in _phi_of(by_patient[pid]) if p in text)
    assert not leaked, f"{len(leaked)} patient data values in the log, e.g. {leaked[:5]}"
