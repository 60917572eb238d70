"""Faults with the real processes: Redis paused (SIGSTOP), stopped and flushed mid-run; the FHIR
server answering 500 / 429, or failing a write-back transaction after applying it. Every hook
call is answered (degraded where it must be, saying so) and, once the fault is gone, each
suggested Condition exists exactly once on the real FHIR server."""
from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager

import pytest
import requests

from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.config import Settings
from fhir_assist.fhir_server import SUGGESTION_TAG, FhirServer
from tests.hostile_http import Answer, HostileServer

pytestmark = pytest.mark.integration
SIGN = "medication-change-order-sign"
DISCHARGE = "coding-suggestions-encounter-discharge"
FAULTS = {"injected": 0, "calls": 0, "5xx": 0}


@contextmanager
def service(models, **changes):
    from fhir_assist.commands.demo import running_service
    settings = Settings(**{"host": "127.0.0.1", "port": 0, "no_auth": True, "evidence": False, **changes})
    with running_service(settings, models=models) as base_url:
        yield base_url


def call(base_url, service_id, body, timeout=60):
    started = time.monotonic()
    response = requests.post(f"{base_url}/cds-services/{service_id}", json=body, timeout=timeout)
    FAULTS["calls"] += 1
    FAULTS["5xx"] += response.status_code >= 500
    assert response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text
    return response, time.monotonic() - started


def request_for(hook_cohort, service_id, index=0, **options):
    by_patient, usable = hook_cohort
    pid = usable[index % len(usable)]
    return build_request(BY_ID[service_id], by_patient[pid], pid, **options)


def load_patient(fhir_base_url, resources):
    resources = sorted(resources, key=lambda r: {"Patient": 0, "Encounter": 1}.get(r["resourceType"], 2))
    # One transaction: Encounters and Conditions cite each other, which HAPI's referential
    # integrity accepts only when they are written together; diagnoses citing Conditions
    # not loaded here are left out (HAPI refuses a reference it cannot resolve).
    ids = {f"{r['resourceType']}/{r['id']}" for r in resources}
    resources = [{**r, "diagnosis": [d for d in r["diagnosis"] if d["condition"].get("reference") in ids]}
                 if r.get("diagnosis") else r for r in resources]
    resources = [{k: v for k, v in r.items() if v != []} for r in resources]
    batch = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    requests.post(fhir_base_url, json=batch, headers={"Content-Type": "application/fhir+json"},
                  timeout=60).raise_for_status()


# ------------------------------------------------------------------------- Redis
def test_redis_paused_stopped_and_flushed_mid_run(demo_models, hook_cohort, restartable_redis):
    bodies = [request_for(hook_cohort, SIGN, i) for i in range(3)]
    with service(demo_models, redis_url=restartable_redis.url) as base_url:
        expected = [call(base_url, SIGN, b)[0].json() for b in bodies]
        os.kill(restartable_redis.proc.pid, signal.SIGSTOP)           # paused: connections hang
        FAULTS["injected"] += 1
        try:
            for body in bodies:
                response, took = call(base_url, SIGN, body)
                assert response.status_code == 200 and took < 15, f"{took:.1f} s with Redis paused"
        finally:
            os.kill(restartable_redis.proc.pid, signal.SIGCONT)
        restartable_redis.flush()                                      # state lost mid-run
        FAULTS["injected"] += 1
        for body, before in zip(bodies, expected):
            response, _ = call(base_url, SIGN, body)
            assert sorted(c["summary"] for c in response.json()["cards"]) == \
                sorted(c["summary"] for c in before["cards"]), "state recomputed from history after a flush"
        restartable_redis.stop()                                       # gone
        FAULTS["injected"] += 1
        for body in bodies:
            assert call(base_url, SIGN, body)[0].status_code == 200
        metrics = requests.get(f"{base_url}/metrics", timeout=10).text
        assert 'fhir_assist_store_errors_total{operation="put_answer"}' in metrics, "the state was dropped, counted"
        restartable_redis.start()                                      # back, empty
        assert call(base_url, SIGN, bodies[0])[0].status_code == 200


# -------------------------------------------------------------------- FHIR server
@pytest.mark.parametrize("status", [500, 429, 503])
def test_fhir_server_errors_are_answered_and_said(demo_models, hook_cohort, status):
    server = HostileServer()
    try:
        server.route("/fhir", Answer(status, b'{"resourceType":"OperationOutcome","issue":[]}',
                                     {"Content-Type": "application/fhir+json", "Retry-After": "1"}))
        FAULTS["injected"] += 1
        with service(demo_models, allowed_fhir_servers=(f"{server.origin}/fhir",), fhir_timeout=2) as base_url:
            # Nothing prefetched: 412 naming the keys. Optional data missing: answered, and said.
            bare = request_for(hook_cohort, "coding-suggestions-patient-view", 1, prefetch=False,
                               fhir_server=f"{server.origin}/fhir", access_token="t")
            response, _ = call(base_url, "coding-suggestions-patient-view", bare)
            assert response.status_code == 412 and f"HTTP {status}" in response.text
            partial = request_for(hook_cohort, "coding-suggestions-patient-view", 1,
                                  fhir_server=f"{server.origin}/fhir", access_token="t")
            del partial["prefetch"]["procedures"]
            response, _ = call(base_url, "coding-suggestions-patient-view", partial)
            assert response.status_code == 200
            assert any("procedures" in c.get("detail", "") for c in response.json()["cards"])
    finally:
        server.close()


def test_write_back_failing_halfway_then_each_condition_exactly_once(demo_models, hook_cohort, fhir_base_url):
    by_patient, usable = hook_cohort
    body = request_for(hook_cohort, DISCHARGE, 7)
    pid, encounter = body["context"]["patientId"], body["context"]["encounterId"]
    load_patient(fhir_base_url, [r for r in by_patient[pid] if r["resourceType"] in ("Patient", "Encounter")])
    proxy = HostileServer(upstream=fhir_base_url)
    transactions = []

    def apply_then_fail(path):
        # The server applies the transaction, then the answer is lost: the worst half-way.
        seen = proxy.seen[-1]
        if seen.method == "POST" and path.rstrip("/") == "/fhir":
            transactions.append(proxy.forward(seen, seen.body).status)
            return Answer(500, b"{}")
        return proxy.forward(seen, seen.body)

    try:
        body["fhirServer"] = f"{proxy.origin}/fhir"
        # No write-back precision floor: the demo models' scores are uncalibrated and nothing would be written.
        with service(demo_models, allowed_fhir_servers=(f"{proxy.origin}/fhir",), write_back_precision=0.0) as base_url:
            proxy.route("/fhir", apply_then_fail)
            FAULTS["injected"] += 1
            failed, _ = call(base_url, DISCHARGE, body)
            assert failed.status_code == 200 and "Write-back pending" in failed.json()["cards"][0]["detail"]
            assert transactions and all(s < 300 for s in transactions), "the server did apply them"
            proxy.routes.clear()                                        # recovered
            for _ in range(2):                                          # the EHR re-sends the call
                answer, _ = call(base_url, DISCHARGE, body)
                assert "recorded on the FHIR server" in answer.json()["cards"][0]["detail"]
    finally:
        proxy.close()
    with FhirServer(fhir_base_url) as fhir:
        ours = [c for c in fhir.search("Condition", {"encounter": f"Encounter/{encounter}"})
                if any(t.get("code") == SUGGESTION_TAG["code"] for t in (c.get("meta") or {}).get("tag", []))]
    codes = [(c["code"]["coding"][0]["system"], c["code"]["coding"][0]["code"]) for c in ours]
    assert codes and len(codes) == len(set(codes)), f"duplicates after recovery: {len(codes) - len(set(codes))}"


def test_zz_fault_summary():
    print(f"\nfaults injected: {FAULTS['injected']}, hook calls: {FAULTS['calls']}, 5xx: {FAULTS['5xx']}")
    assert FAULTS["5xx"] == 0
