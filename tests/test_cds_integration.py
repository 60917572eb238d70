"""The CDS Hooks service against a real FHIR R4 server and a real Redis (fixtures in conftest).

The service runs behind waitress on a loopback port and is called over HTTP, as an
EHR would. Each test that uses the FHIR server runs against both test servers (HAPI FHIR
JPA and Medplum), or only against FHIR_BASE_URL when set.
"""
from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager

import pytest
import requests

from fhir_assist.cds.catalog import BY_ID, SERVICES
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.config import Settings, TrustedIssuerSpec
from tests.cds_rules import assert_valid_response
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models(demo_models):
    return demo_models


@pytest.fixture(scope="module")
def cohort(hook_cohort):
    by_patient, usable = hook_cohort
    return by_patient, usable[:8]


@pytest.fixture(scope="module")
def fhir(fhir_base_url, cohort):
    """The FHIR server with the chosen patients loaded (PUT, so reloading is harmless), one
    transaction per patient: Encounters and Conditions cite each other, which a server that
    enforces referential integrity (HAPI) only accepts when they are written together."""
    by_patient, chosen = cohort
    session = requests.Session()
    for pid in chosen:
        batch = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in by_patient[pid]]}
        response = session.post(fhir_base_url, json=batch, headers={"Content-Type": "application/fhir+json"},
                                timeout=60)
        assert response.status_code == 200, response.text[:1000]
        failed = [e["response"]["status"] for e in response.json().get("entry", [])
                  if not str(e.get("response", {}).get("status", "")).startswith("20")]
        assert not failed, f"loading the cohort into the FHIR server failed: {failed[:5]}"
    return fhir_base_url


@contextmanager
def service(models, **changes):
    from fhir_assist.commands.demo import running_service
    # Evidence per suggested code is slow and tested in test_cds_service.py: off here.
    settings = Settings(**{"host": "127.0.0.1", "port": 0, "no_auth": True, "evidence": False, **changes})
    runner = running_service(settings, models=models)
    with runner as base_url:
        yield base_url, runner.app


def call(base_url, service_id, body, headers=None):
    return requests.post(f"{base_url}/cds-services/{service_id}", json=body, timeout=60, headers=headers or {})


def request_for(cohort, service_id, index=0, **options):
    by_patient, chosen = cohort
    pid = chosen[index % len(chosen)]
    return build_request(BY_ID[service_id], by_patient[pid], pid, **options)


def _summaries(answer):
    return sorted((c["summary"], tuple(s["label"] for s in c.get("suggestions", []))) for c in answer["cards"])


# ------------------------------------------------------- prefetch vs fetching
@pytest.mark.parametrize("service_id", [s.id for s in SERVICES])
def test_each_hook_without_prefetch_fetches_from_the_fhir_server(models, cohort, fhir, service_id):
    with service(models, write_back=False, allowed_fhir_servers=(fhir,)) as (base_url, app):
        for i in range(2):
            # What the server holds: the whole record (no stripped diagnoses, orders not moved to drafts).
            with_prefetch = call(base_url, service_id, request_for(
                cohort, service_id, i, strip_encounter_diagnoses=False, encounter_orders_as_drafts=False))
            without = call(base_url, service_id, request_for(cohort, service_id, i, prefetch=False,
                                                                fhir_server=fhir, access_token="opaque-token",
                                                                encounter_orders_as_drafts=False))
            assert with_prefetch.status_code == 200, with_prefetch.text[:500]
            assert without.status_code == 200, without.text[:500]
            assert_valid_response(without.json())
            # The data is the same whether prefetched or fetched, so is the advice.
            assert _summaries(without.json()) == _summaries(with_prefetch.json())
        metrics = requests.get(f"{base_url}/metrics", timeout=10).text
        assert 'fhir_assist_prefetch_keys_total{source="fetched"}' in metrics


def test_without_prefetch_the_bearer_token_goes_to_the_fhir_server(models, cohort, fhir, fhir_server_kind,
                                                                    fhir_bearer_token):
    """The HAPI test server checks the token (as a hospital's server behind OAuth does): the
    EHR's token is accepted, another one is refused and the caller is told (412). The
    Medplum test server takes any token."""
    service_id = "medication-change-patient-view"
    with service(models, write_back=False, allowed_fhir_servers=(fhir,)) as (base_url, _):
        good = call(base_url, service_id, request_for(cohort, service_id, 2, prefetch=False, fhir_server=fhir,
                                                      access_token=fhir_bearer_token))
        assert good.status_code == 200, good.text[:500]
        assert good.json()["cards"]
        wrong = call(base_url, service_id, request_for(cohort, service_id, 2, prefetch=False, fhir_server=fhir,
                                                       access_token="someone-elses-token"))
    if fhir_server_kind == "hapi":
        assert wrong.status_code == 412, wrong.text[:500]
        assert "401" in wrong.text
    elif fhir_server_kind == "medplum":
        assert wrong.status_code == 200


def test_partial_prefetch_is_completed_from_the_fhir_server(models, cohort, fhir):
    body = request_for(cohort, "medication-change-order-sign", 1, fhir_server=fhir, encounter_orders_as_drafts=False)
    full = request_for(cohort, "medication-change-order-sign", 1, encounter_orders_as_drafts=False)
    for key in ("encounters", "medications"):
        del body["prefetch"][key]
    with service(models, allowed_fhir_servers=(fhir,)) as (base_url, _):
        partial = call(base_url, "medication-change-order-sign", body)
        assert partial.status_code == 200
        assert_valid_response(partial.json())
        full_answer = call(base_url, "medication-change-order-sign", full).json()
        assert _summaries(partial.json()) == _summaries(full_answer)


def test_unreachable_fhir_server_gives_412_or_a_degraded_card(models, cohort):
    dead = "http://127.0.0.1:9/fhir"        # discard port: nothing listens
    with service(models, fhir_timeout=1.0, allowed_fhir_servers=(dead,)) as (base_url, _):
        started = time.monotonic()
        response = call(base_url, "medication-change-patient-view",
                        request_for(cohort, "medication-change-patient-view", prefetch=False, fhir_server=dead))
        assert response.status_code == 412
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome" and "unreachable" in outcome["issue"][0]["diagnostics"]
        assert time.monotonic() - started < 15
        # Required data prefetched, optional data (procedures) missing: answered, and said so.
        body = request_for(cohort, "coding-suggestions-patient-view", 2, fhir_server=dead)
        del body["prefetch"]["procedures"]
        response = call(base_url, "coding-suggestions-patient-view", body)
        assert response.status_code == 200
        assert_valid_response(response.json())
        assert any("procedures" in c.get("detail", "") for c in response.json()["cards"])


# ----------------------------------------------------------------- write-back
def test_discharge_write_back_is_idempotent_and_valid(models, cohort, fhir):
    from fhir.resources.R4B.condition import Condition

    from fhir_assist.fhir_server import FhirServer

    # The EHR prefetches the record as it stands at discharge (the encounter not coded yet) and
    # names its FHIR server, where the recommended codes are written for coder review.
    body = request_for(cohort, "coding-suggestions-encounter-discharge", 3, fhir_server=fhir)
    encounter = body["context"]["encounterId"]
    # No precision floor: every recommended code up to the cap is written (the floor is
    # tested in test_write_back_integration.py).
    with service(models, write_back_precision=0.0, allowed_fhir_servers=(fhir,)) as (base_url, _):
        answers = []
        for _ in range(3):              # the EHR retries the same discharge call
            response = call(base_url, "coding-suggestions-encounter-discharge", body)
            assert response.status_code == 200, response.text[:500]
            assert_valid_response(response.json())
            answers.append(response.json())
    card = answers[-1]["cards"][0]
    recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
    assert recommended and "provisional Conditions" in card["detail"]
    server = FhirServer(fhir)
    written = [c for c in server.search("Condition", {"encounter": f"Encounter/{encounter}"})
               if any(t.get("code") == "suggested" for t in (c.get("meta") or {}).get("tag", []))]
    codes = [(cd["system"], cd["code"]) for c in written for cd in c["code"]["coding"]]
    assert len(codes) == len(set(codes)), "exactly one Condition per code after three identical calls"
    expected = {(a["resource"]["code"]["coding"][0]["system"], a["resource"]["code"]["coding"][0]["code"])
                for s in recommended for a in s["actions"]}
    assert set(codes) <= expected and len(codes) == min(15, len(expected)), \
        "the recommended codes on the card are on the server, up to the cap"
    import re
    recorded = int(re.search(r"(\d+) recommended code\(s\) recorded", card["detail"]).group(1))
    assert len(written) == recorded, "the card says how many Conditions were written"
    for condition in written:
        Condition.model_validate(condition)
        again = server.read("Condition", condition["id"])
        assert again["verificationStatus"]["coding"][0]["code"] == "provisional"
        assert again["encounter"]["reference"] == f"Encounter/{encounter}"
    # The card's suggestions confirm the written Conditions (update), never create duplicates.
    for s in recommended:
        action = s["actions"][0]
        if action["type"] == "create":
            assert (action["resource"]["code"]["coding"][0]["system"],
                    action["resource"]["code"]["coding"][0]["code"]) not in set(codes)
            continue
        assert action["type"] == "update" and action["resource"]["id"] in {c["id"] for c in written}
        assert action["resource"]["verificationStatus"]["coding"][0]["code"] == "confirmed"


# ----------------------------------------------------------------- Redis state
def test_state_and_feedback_in_redis_and_redis_stopped_mid_run(models, cohort, restartable_redis):
    import redis as redis_lib

    from fhir_assist.store import RedisStore

    with service(models, redis_url=restartable_redis.url) as (base_url, app):
        body = request_for(cohort, "medication-change-order-sign", 4)
        first = call(base_url, "medication-change-order-sign", body)
        assert first.status_code == 200
        key = f"fhir-assist:default:micron:{body['context']['patientId']}"
        assert redis_lib.Redis.from_url(restartable_redis.url).exists(key)

        coding = call(base_url, "coding-suggestions-patient-view", request_for(cohort, "coding-suggestions-patient-view", 4)).json()
        card = coding["cards"][0]
        fb = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                            "outcomeTimestamp": "2026-11-23T10:00:00Z"}]}
        assert requests.post(f"{base_url}/cds-services/coding-suggestions-patient-view/feedback", json=fb,
                             timeout=10).status_code == 200
        stored = RedisStore(restartable_redis.url).list_feedback("default", source="cds-feedback")
        assert [e["card"] for e in stored] == [card["uuid"]] and stored[0]["label"] == 1

        restartable_redis.stop()                       # Redis goes away mid-run
        answered_while_down = {}
        for service_id in ("medication-change-order-sign", "coding-suggestions-patient-view"):
            response = call(base_url, service_id, request_for(cohort, service_id, 4))
            assert response.status_code == 200, response.text[:500]
            assert_valid_response(response.json())
            answered_while_down[service_id] = response.json()
        again = call(base_url, "medication-change-order-sign", body)
        assert _summaries(again.json()) == _summaries(first.json()), "recomputed from history, same advice"
        assert requests.get(f"{base_url}/readyz", timeout=10).status_code == 503
        down = requests.post(f"{base_url}/cds-services/coding-suggestions-patient-view/feedback", json=fb, timeout=10)
        assert down.status_code == 503 and down.json()["resourceType"] == "OperationOutcome"
        metrics = requests.get(f"{base_url}/metrics", timeout=10).text
        assert 'fhir_assist_state_fallbacks_total{reason="store-unavailable"}' in metrics

        restartable_redis.start()                      # and comes back
        deadline = time.monotonic() + 10
        while requests.get(f"{base_url}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "readiness should return with Redis"
            time.sleep(0.2)
        assert call(base_url, "medication-change-order-sign", body).status_code == 200
        assert redis_lib.Redis.from_url(restartable_redis.url).exists(key)
        # A card answered while Redis was down was kept in process: its feedback still becomes a label.
        late = answered_while_down["coding-suggestions-patient-view"]["cards"][0]
        late_fb = {"feedback": [{"card": late["uuid"], "outcome": "accepted",
                                 "acceptedSuggestions": [{"id": late["suggestions"][0]["uuid"]}],
                                 "outcomeTimestamp": "2026-11-23T11:00:00Z"}]}
        assert requests.post(f"{base_url}/cds-services/coding-suggestions-patient-view/feedback", json=late_fb,
                             timeout=10).status_code == 200
        stored = RedisStore(restartable_redis.url).list_feedback("default", source="cds-feedback")
        assert [e.get("label") for e in stored if e["card"] == late["uuid"]] == [1]


def test_jwt_replay_check_in_redis_and_fallback_when_redis_is_down(models, cohort, restartable_redis, tmp_path):
    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    issuer = "https://ehr.example.org"
    port = free_port()
    with service(models, no_auth=False, redis_url=restartable_redis.url, port=port,
                 public_url=f"http://127.0.0.1:{port}", issuer_tenants_spec=((issuer, ("north",)),),
                 trust=(TrustedIssuerSpec(issuer, str(jwks)),)) as (base_url, _):
        service_id = "medication-change-patient-view"
        url = f"{base_url}/cds-services/{service_id}"

        def signed(jti):
            now = int(time.time())
            return {"Authorization": "Bearer " + jwt.encode(
                {"alg": "ES384", "kid": "k1", "typ": "JWT"},
                {"iss": issuer, "aud": url, "exp": now + 60, "iat": now, "jti": jti, "tenant": "north"},
                key, algorithms=["ES384"])}
        body = request_for(cohort, service_id, 5)
        headers = signed(str(uuid.uuid4()))
        assert call(base_url, service_id, body, headers).status_code == 200
        assert call(base_url, service_id, body, headers).status_code == 401        # replayed
        state_key = f"fhir-assist:north@https%3A%2F%2Fehr.example.org:micron:{body['context']['patientId']}"
        import redis as redis_lib
        assert redis_lib.Redis.from_url(restartable_redis.url).exists(state_key), "state kept per tenant"
        restartable_redis.stop()
        headers = signed(str(uuid.uuid4()))
        assert call(base_url, service_id, body, headers).status_code == 200        # still answers
        assert call(base_url, service_id, body, headers).status_code == 401        # replay caught locally


def test_paginated_prefetch_is_read_to_the_end(models, cohort, fhir):
    full = request_for(cohort, "medication-change-patient-view", 6, encounter_orders_as_drafts=False)
    paged = request_for(cohort, "medication-change-patient-view", 6, fhir_server=fhir)
    pid = paged["context"]["patientId"]
    for key, rtype in (("conditions", "Condition"), ("medications", "MedicationRequest")):
        bundle = paged["prefetch"][key]
        bundle["entry"] = bundle["entry"][:2]           # the EHR sent the first page only
        bundle["link"] = [{"relation": "next", "url": f"{fhir}/{rtype}?patient=Patient/{pid}&_count=3"}]
    with service(models, allowed_fhir_servers=(fhir,)) as (base_url, _):
        expected = _summaries(call(base_url, "medication-change-patient-view", full).json())
        answer = call(base_url, "medication-change-patient-view", paged)
        assert answer.status_code == 200
        assert _summaries(answer.json()) == expected
        # Without a FHIR server the first page is used, and the card says the data is partial.
        del paged["fhirServer"]
        answer = call(base_url, "medication-change-patient-view", paged).json()
        assert_valid_response(answer)
        assert all("Partial data" in c["detail"] for c in answer["cards"] if "detail" in c and c["indicator"] == "info")
