"""Tenant isolation on the running service with real Redis and a real FHIR server: an issuer
speaks only for its configured tenants, records are keyed by (issuer, tenant), only allowed
issuers use the configured FHIR server, and coders change only this service's Conditions."""
from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager

import pytest
import redis as redis_lib
import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.config import Settings, TrustedIssuerSpec
from tests.conftest import free_port

pytestmark = pytest.mark.integration
ISS_A, ISS_B, ISS_C = "https://ehr-a.example.org", "https://ehr-b.example.org", "https://ehr-c.example.org"
SIGN = "medication-change-order-sign"
DISCHARGE = "coding-suggestions-encounter-discharge"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("issuers")
    out = {}
    for iss in (ISS_A, ISS_B, ISS_C):
        key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
        path = folder / f"{uuid.uuid4().hex}.json"
        path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
        out[iss] = (key, str(path))
    return out


@contextmanager
def service(demo_models, keys, redis_url, **changes):
    from fhir_assist.commands.demo import running_service
    port = free_port()
    settings = Settings(**{
        "host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}", "evidence": False,
        "redis_url": redis_url, "trust": tuple(TrustedIssuerSpec(iss, path) for iss, (_, path) in keys.items()),
        "issuer_tenants_spec": ((ISS_A, ("shared", "hospA")), (ISS_B, ("shared", "hospB"))), **changes})
    with running_service(settings, models=demo_models) as base_url:
        yield base_url


def signed(keys, iss, url, **claims):
    now = int(time.time())
    token = jwt.encode({"alg": "ES384", "kid": "k1", "typ": "JWT"},
                       {"iss": iss, "aud": url, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4()), **claims},
                       keys[iss][0], algorithms=["ES384"])
    return {"Authorization": f"Bearer {token}"}


def call(base_url, keys, iss, service_id, body, **claims):
    url = f"{base_url}/cds-services/{service_id}"
    return requests.post(url, json=body, headers=signed(keys, iss, url, **claims), timeout=60)


def request_for(hook_cohort, service_id, index=0, **options):
    by_patient, usable = hook_cohort
    pid = usable[index % len(usable)]
    return build_request(BY_ID[service_id], by_patient[pid], pid, **options)


def test_an_issuer_speaks_only_for_its_own_tenants(demo_models, keys, redis_url, hook_cohort):
    body = request_for(hook_cohort, SIGN, 2)
    with service(demo_models, keys, redis_url) as base_url:
        assert call(base_url, keys, ISS_A, SIGN, body, tenant="hospA").status_code == 200
        refused = call(base_url, keys, ISS_B, SIGN, body, tenant="hospA")         # A's tenant
        assert refused.status_code == 401 and "may not act for tenant" in refused.text
        assert call(base_url, keys, ISS_C, SIGN, body, tenant="hospC").status_code == 401   # none configured
        assert call(base_url, keys, ISS_C, SIGN, body).status_code == 200          # its own default only
        # Feedback is not readable with an EHR token, whatever the tenant.
        url = f"{base_url}/cds-services/{SIGN}/feedback"
        assert requests.get(url, headers=signed(keys, ISS_B, url, tenant="hospB"), timeout=10).status_code == 405


def test_state_is_kept_per_issuer_even_for_the_same_tenant_name(demo_models, keys, redis_url, hook_cohort):
    honest = request_for(hook_cohort, SIGN, 3)
    pid = honest["context"]["patientId"]
    # Issuer B invents a history for the same patient id (another patient's record, relabelled).
    invented = request_for(hook_cohort, SIGN, 4)
    invented = json.loads(json.dumps(invented).replace(invented["context"]["patientId"], pid))
    with service(demo_models, keys, redis_url) as base_url:
        first = call(base_url, keys, ISS_A, SIGN, honest, tenant="shared").json()
        for _ in range(3):
            assert call(base_url, keys, ISS_B, SIGN, invented, tenant="shared").status_code == 200
        again = call(base_url, keys, ISS_A, SIGN, honest, tenant="shared").json()
    summaries = lambda a: sorted(c["summary"] for c in a["cards"])  # noqa: E731
    assert summaries(again) == summaries(first), "issuer B's calls changed issuer A's suggestions"
    client = redis_lib.Redis.from_url(redis_url)
    keys_for_patient = {k.decode() for k in client.scan_iter(f"fhir-assist:*:micron:{pid}")}
    assert any("@https%3A%2F%2Fehr-a" in k for k in keys_for_patient)
    assert any("@https%3A%2F%2Fehr-b" in k for k in keys_for_patient)


def test_only_allowed_issuers_write_to_the_configured_fhir_server(demo_models, keys, redis_url, hook_cohort,
                                                                  fhir_base_url):
    from fhir_assist.fhir_server import FhirServer

    by_patient, usable = hook_cohort
    body = request_for(hook_cohort, DISCHARGE, 9)               # no fhirServer: all prefetched
    encounter = body["context"]["encounterId"]
    # The encounter and patient exist on the server, so a write would succeed.
    pid = body["context"]["patientId"]
    # Without Encounter.diagnosis: it cites Conditions not loaded here, which HAPI's referential
    # integrity refuses.
    resources = [{k: v for k, v in r.items() if k != "diagnosis"} for r in by_patient[pid]
                 if r["resourceType"] in ("Patient", "Encounter")]
    resources.sort(key=lambda r: r["resourceType"] != "Patient")
    batch = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    requests.post(fhir_base_url, json=batch, headers={"Content-Type": "application/fhir+json"},
                  timeout=60).raise_for_status()

    def written():      # this service's Conditions (other tests may have loaded the patient's own)
        with FhirServer(fhir_base_url) as fhir:
            found = fhir.search("Condition", {"encounter": f"Encounter/{encounter}"})
        return [c for c in found if any(t.get("code") == "suggested" for t in (c.get("meta") or {}).get("tag", []))]

    # No write-back precision floor: the bundled demo models' scores are not calibrated, and this
    # test is about who may write, not how many codes.
    with service(demo_models, keys, redis_url, fhir_base_url=fhir_base_url,
                 fhir_base_url_issuers=(ISS_A,), write_back_precision=0.0) as base_url:
        answer = call(base_url, keys, ISS_C, DISCHARGE, body)
        assert answer.status_code == 200
        assert "Not written back" in answer.json()["cards"][0]["detail"]
        assert written() == [], "an issuer not allowed to use the configured FHIR server wrote to it"
        assert call(base_url, keys, ISS_A, DISCHARGE, body, tenant="hospA").status_code == 200
        assert written(), "the allowed issuer's discharge call is written back"


# ------------------------------------------------------------- coder worklist
from tests.test_review_views import conditions_of, post, review, seed_encounter, status_of, tenant  # noqa: E402,F401


def test_coders_change_only_conditions_this_service_suggested(review):
    from fhir_assist.fhir_server import FhirServer

    client, base = review["client"], review["base_url"]
    seeded = seed_encounter(base, [("E11.65", 0.9)])
    other = seed_encounter(base, [("I10", 0.8)])
    clinician = {"resourceType": "Condition", "subject": {"reference": f"Patient/{seeded['patient']}"},
                 "encounter": {"reference": f"Encounter/{seeded['encounter']}"},
                 "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                    "code": "confirmed"}]},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J18.9"}]}}
    with FhirServer(base) as fhir:
        entered = fhir.create_condition(clinician)
    page = f"/review/encounter/{seeded['encounter']}"
    # A clinician's Condition on the encounter, and a suggestion of another encounter.
    post(client, f"{page}/conditions/{entered['id']}/reject", {"reason": "x"}, page)
    post(client, f"{page}/conditions/{other['conditions']['I10']}/reject", {"reason": "x"}, page)
    # Adding the clinician's code confirms nothing of theirs and creates the coder's own.
    post(client, f"{page}/add", {"code": "J18.9"}, page)
    with FhirServer(base) as fhir:
        assert status_of(fhir.read("Condition", entered["id"])) == "confirmed"
        assert "note" not in fhir.read("Condition", entered["id"])
        assert status_of(fhir.read("Condition", other["conditions"]["I10"])) == "provisional"
    # Its own suggestion still works.
    post(client, f"{page}/conditions/{seeded['conditions']['E11.65']}/accept", {}, page)
    assert status_of(conditions_of(base, seeded["encounter"])["E11.65"][0]) == "confirmed"
