"""fhir_assist.fhir_server against a real FHIR R4 server over HTTP.

Every test runs against both servers the fixtures start (the in-memory Medplum server of
tests/fhir_server/ and the HAPI FHIR JPA server of tests/hapi_server/), or only against
$FHIR_BASE_URL when set. Where the two servers legitimately differ, the test says what
each does. Data written here is idempotent (client ids via PUT, conditional creates), so
reruns against a persistent server keep passing.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from fhir_assist.fhir_server import (
    EXT_MODEL_VERSION,
    EXT_SUGGESTION_RANK,
    EXT_SUGGESTION_SCORE,
    SUGGESTION_IDENTIFIER_SYSTEM,
    FhirServer,
    FhirServerError,
    FhirServerUnavailable,
    SuggestedCode,
    build_suggested_condition,
    suggestion_identifier,
)
from fhir_assist.fhir.validation import InvalidResource, validate_r4
from mappings.codesystems import ICD9CM, ICD10CM

pytestmark = pytest.mark.integration

COHORT_BUNDLE = Path(__file__).resolve().parents[1] / "examples" / "cohort-bundle.json"


@pytest.fixture(scope="module")
def cohort_bundle() -> dict:
    return json.loads(COHORT_BUNDLE.read_text())


@pytest.fixture(scope="module")
def loaded(fhir_base_url, cohort_bundle) -> dict:
    """examples/cohort-bundle.json posted to the server (as examples/load-cohort.sh does)."""
    response = requests.post(fhir_base_url, json=cohort_bundle, timeout=60,
                             headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    assert response.status_code == 200, response.text[:1000]
    reply = response.json()
    assert reply["type"] == "transaction-response"
    assert len(reply["entry"]) == len(cohort_bundle["entry"])
    assert all(e["response"]["status"][:3] in ("200", "201") for e in reply["entry"])
    return cohort_bundle


@pytest.fixture
def fhir(fhir_base_url):
    with FhirServer(fhir_base_url, timeout=30) as server:
        yield server


def resources_by_patient(bundle: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Patient":
            out.setdefault(r["id"], []).append(r)
        else:
            ref = (r.get("subject") or r.get("patient") or {}).get("reference", "")
            out.setdefault(ref.split("/")[-1], []).append(r)
    return out


def a_patient_with_encounter(bundle: dict) -> tuple[str, str]:
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Encounter":
            return r["subject"]["reference"].split("/")[-1], r["id"]
    raise AssertionError("the example cohort has no Encounter")


def fresh_patient_with_encounter(fhir: FhirServer) -> tuple[str, str]:
    """A new patient and encounter, for tests whose writes must stay out of the shared cohort."""
    patient_id, encounter_id = f"p-{uuid.uuid4().hex[:10]}", f"e-{uuid.uuid4().hex[:10]}"
    fhir.request("PUT", f"Patient/{patient_id}", body={"resourceType": "Patient", "id": patient_id})
    fhir.request("PUT", f"Encounter/{encounter_id}", body={
        "resourceType": "Encounter", "id": encounter_id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"}})
    return patient_id, encounter_id


def test_cohort_bundle_is_valid_fhir(cohort_bundle):
    validate_r4(cohort_bundle)
    types = Counter(e["resource"]["resourceType"] for e in cohort_bundle["entry"])
    assert types["Patient"] >= 3 and types["Encounter"] >= 3 and types["Condition"] >= 3


def test_server_answers_metadata(fhir):
    statement = fhir.capability_statement()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")


def test_load_cohort_and_fetch_a_patient_back(fhir, loaded):
    by_patient = resources_by_patient(loaded)
    for patient_id, expected in list(by_patient.items())[:3]:
        fetched = fhir.patient_resources(patient_id)
        assert fetched[0]["resourceType"] == "Patient" and fetched[0]["id"] == patient_id
        got = {(r["resourceType"], r["id"]) for r in fetched}
        want = {(r["resourceType"], r["id"]) for r in expected}
        assert want <= got, f"missing for {patient_id}: {sorted(want - got)}"
        for r in fetched[1:]:
            ref = (r.get("subject") or r.get("patient") or {}).get("reference", "")
            assert ref.endswith(f"Patient/{patient_id}")
        original = next(r for r in expected if r["resourceType"] == "Patient")
        assert fetched[0].get("birthDate") == original.get("birthDate")


def test_reloading_the_cohort_creates_no_duplicates(fhir, loaded, fhir_base_url):
    requests.post(fhir_base_url, json=loaded, timeout=60,
                  headers={"Content-Type": "application/fhir+json"}).raise_for_status()
    patient_id, _ = a_patient_with_encounter(loaded)
    expected = [r for r in resources_by_patient(loaded)[patient_id] if r["resourceType"] == "Encounter"]
    found = [e["id"] for e in fhir.search("Encounter", {"patient": f"Patient/{patient_id}"})]
    # The server is shared by the session, and other tests may add encounters of their own
    # for this patient: what matters is that each loaded one is there exactly once.
    for encounter in expected:
        assert found.count(encounter["id"]) == 1, (encounter["id"], found)


def test_search_follows_paging_links(fhir, loaded):
    patient_id, _ = a_patient_with_encounter(loaded)
    everything = fhir.search("Condition", {"patient": f"Patient/{patient_id}"})
    paged = fhir.search("Condition", {"patient": f"Patient/{patient_id}", "_count": 1})
    assert len(everything) >= 1
    assert sorted(r["id"] for r in paged) == sorted(r["id"] for r in everything)
    assert len(fhir.search("Condition", {"patient": f"Patient/{patient_id}", "_count": 1}, max_results=1)) == 1


def test_a_search_repeated_after_a_write_sees_the_write(fhir):
    """HAPI answers a repeated search from its cache (60 s) unless asked for fresh results:
    the worklist and write-back must see a Condition written a moment ago."""
    patient_id, encounter_id = fresh_patient_with_encounter(fhir)
    query = {"encounter": f"Encounter/{encounter_id}", "code": f"{ICD10CM}|Q99.8"}
    assert fhir.search("Condition", query) == []
    written = fhir.create_condition(build_suggested_condition(
        patient_id, encounter_id, SuggestedCode(ICD10CM, "Q99.8"), "v"))
    assert [c["id"] for c in fhir.search("Condition", query)] == [written["id"]]


def test_read_missing_resource_is_404(fhir, loaded):
    with pytest.raises(FhirServerError) as err:
        fhir.read("Patient", "no-such-patient-fhir-assist")
    assert err.value.status == 404


def suggestions_for_test(n: int = 10) -> list[SuggestedCode]:
    codes = ["E11.65", "I10", "N18.3", "E78.5", "I25.10", "J44.9", "K21.9", "F32.A", "G47.33", "M17.11"]
    out = [SuggestedCode(ICD10CM, c, f"display {c}", score=1 - i / 20, rank=i + 1) for i, c in enumerate(codes[:n])]
    out.append(SuggestedCode(ICD9CM, "428.0", "Congestive heart failure, unspecified", score=0.3, rank=n + 1))
    return out


def test_write_back_is_idempotent_across_three_retries(fhir, loaded):
    patient_id, encounter_id = a_patient_with_encounter(loaded)
    suggestions = suggestions_for_test()   # 11 codes: two transactions (8 + 3)
    results = [fhir.write_suggested_conditions(patient_id, encounter_id, suggestions, "icd-ranker@test")
               for _ in range(3)]
    assert all(len(r) == len(suggestions) for r in results)
    assert [c["id"] for c in results[0]] == [c["id"] for c in results[1]] == [c["id"] for c in results[2]]

    for s in suggestions:
        value = suggestion_identifier(patient_id, encounter_id, s.system, s.code)
        matches = fhir.search("Condition", {"identifier": f"{SUGGESTION_IDENTIFIER_SYSTEM}|{value}"})
        assert len(matches) == 1, f"{s.code}: {len(matches)} Conditions"
        condition = validate_r4(matches[0])
        assert condition["subject"]["reference"] == f"Patient/{patient_id}"
        assert condition["encounter"]["reference"] == f"Encounter/{encounter_id}"
        assert condition["code"]["coding"][0] == {"system": s.system, "code": s.code, "display": s.display}
        assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
        ext = {e["url"]: e for e in condition["extension"]}
        assert ext[EXT_SUGGESTION_RANK]["valueInteger"] == s.rank
        assert ext[EXT_SUGGESTION_SCORE]["valueDecimal"] == pytest.approx(s.score)
        assert ext[EXT_MODEL_VERSION]["valueString"] == "icd-ranker@test"

    stored = fhir.search("Condition", {"encounter": f"Encounter/{encounter_id}"})
    ours = Counter(c["code"]["coding"][0]["code"] for c in stored
                   if any(i.get("system") == SUGGESTION_IDENTIFIER_SYSTEM for i in c.get("identifier", [])))
    # Other tests write other codes at this encounter; each of these codes exists once.
    assert {s.code: ours[s.code] for s in suggestions} == {s.code: 1 for s in suggestions}


def test_write_back_accepts_dicts_and_skips_repeated_codes(fhir, loaded):
    patient_id, encounter_id = a_patient_with_encounter(loaded)
    suggestions = [{"system": ICD10CM, "code": "Z79.4", "display": "Long term (current) use of insulin",
                    "score": 0.9, "rank": 1},
                   {"system": ICD10CM, "code": "Z79.4", "score": 0.8, "rank": 2}]
    stored = fhir.write_suggested_conditions(f"Patient/{patient_id}", encounter_id, suggestions, "v1")
    assert len(stored) == 1 and stored[0]["code"]["coding"][0]["code"] == "Z79.4"


def test_write_back_refuses_non_icd_codes(fhir):
    with pytest.raises(ValueError, match="ICD-10-CM or ICD-9-CM"):
        fhir.write_suggested_conditions("p", "e", [SuggestedCode("http://snomed.info/sct", "44054006")], "v1")


def test_update_condition_status_is_version_aware(fhir, loaded):
    patient_id, encounter_id = a_patient_with_encounter(loaded)
    [condition] = fhir.write_suggested_conditions(
        patient_id, encounter_id, [SuggestedCode(ICD10CM, "E66.9", "Obesity, unspecified", 0.7, 1)], "v1")
    original = fhir.read("Condition", condition["id"])

    confirmed = fhir.update_condition_status(condition["id"], "confirmed", "documented in discharge summary",
                                             user="coder-7")
    assert confirmed["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert confirmed["note"][-1]["text"] == "documented in discharge summary"
    assert confirmed["meta"]["versionId"] != original["meta"]["versionId"]

    # A writer holding the old version is refused by the server...
    stale = dict(original, verificationStatus={"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted"}]})
    with pytest.raises(FhirServerError) as err:
        fhir.request("PUT", f"Condition/{condition['id']}", body=stale,
                     headers={"If-Match": f'W/"{original["meta"]["versionId"]}"'})
    assert err.value.status in (409, 412)
    assert fhir.read("Condition", condition["id"])["verificationStatus"]["coding"][0]["code"] == "confirmed"

    # ...while update_condition_status always starts from the current version.
    refuted = fhir.update_condition_status(condition["id"], "refuted", "ruled out")
    assert refuted["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert [n["text"] for n in refuted["note"]][-2:] == ["documented in discharge summary", "ruled out"]
    with pytest.raises(ValueError, match="status must be"):
        fhir.update_condition_status(condition["id"], "maybe")


def test_invalid_resource_is_answered_400_with_operation_outcome(fhir, loaded):
    patient_id, _ = a_patient_with_encounter(loaded)
    invalid = {"resourceType": "Condition", "subject": {"reference": f"Patient/{patient_id}"},
               "recordedDate": "yesterday-ish", "code": {"coding": [{"system": ICD10CM, "code": "I10"}]}}
    with pytest.raises(FhirServerError) as err:
        fhir.request("POST", "Condition", body=invalid)
    assert err.value.status == 400
    assert err.value.outcome["resourceType"] == "OperationOutcome"
    # fhir_assist validates before sending, so it never sends such a resource.
    with pytest.raises(InvalidResource, match="recordedDate"):
        fhir.create_condition(invalid)


def test_create_condition_conditionally(fhir, loaded):
    patient_id, encounter_id = a_patient_with_encounter(loaded)
    condition = build_suggested_condition(patient_id, encounter_id, SuggestedCode(ICD10CM, "R73.03", "Prediabetes"), "v1")
    ident = condition["identifier"][0]
    query = f"identifier={ident['system']}|{ident['value']}"
    first = fhir.create_condition(condition, if_none_exist=query)
    second = fhir.create_condition(condition, if_none_exist=query)
    assert first["id"] == second["id"]


def test_failed_transaction_leaves_nothing_behind(fhir, loaded):
    patient_id, encounter_id = a_patient_with_encounter(loaded)
    [condition] = fhir.write_suggested_conditions(
        patient_id, encounter_id, [SuggestedCode(ICD10CM, "E55.9", "Vitamin D deficiency, unspecified")], "v1")
    new_id = f"fa-rollback-{uuid.uuid4().hex[:12]}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": new_id, "gender": "unknown"},
         "request": {"method": "PUT", "url": f"Patient/{new_id}"}},
        {"resource": condition, "request": {"method": "PUT", "url": f"Condition/{condition['id']}",
                                            "ifMatch": 'W/"999999"'}},   # a stale version: fails
    ]}
    with pytest.raises(FhirServerError) as err:
        fhir.request("POST", "", body=bundle)
    assert err.value.status in (409, 412)
    with pytest.raises(FhirServerError) as err:
        fhir.read("Patient", new_id)
    assert err.value.status in (404, 410)


def test_batch_answers_each_entry(fhir, loaded):
    patient_id, _ = a_patient_with_encounter(loaded)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
        {"request": {"method": "GET", "url": "Patient/no-such-patient-fhir-assist"}},
    ]}
    reply = fhir.request("POST", "", body=bundle).json()
    assert reply["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in reply["entry"]] == ["200", "404"]
    assert reply["entry"][0]["resource"]["id"] == patient_id


def test_batch_with_an_unparsable_entry_is_answered_with_operation_outcomes(fhir, loaded, fhir_server_kind):
    """Medplum's wrapper validates each batch entry; HAPI refuses the whole Bundle (it
    cannot parse it). Both answer with an OperationOutcome a client can show."""
    patient_id, _ = a_patient_with_encounter(loaded)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Condition", "subject": {"reference": f"Patient/{patient_id}"},
                      "recordedDate": "not-a-date"},
         "request": {"method": "POST", "url": "Condition"}},
        {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
    ]}
    if fhir_server_kind != "medplum":
        with pytest.raises(FhirServerError) as err:
            fhir.request("POST", "", body=bundle)
        assert err.value.status == 400 and err.value.outcome["resourceType"] == "OperationOutcome"
        return
    reply = fhir.request("POST", "", body=bundle).json()
    assert [e["response"]["status"][:3] for e in reply["entry"]] == ["400", "200"]
    assert reply["entry"][0]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_large_conditional_transactions(fhir, loaded, fhir_server_kind):
    """The Medplum test server caps conditional transactions at 8 entries and says so;
    HAPI takes 9 (write-back sends at most 8 per transaction for servers like the first)."""
    # A patient of its own: nine made-up codes must not land in the shared cohort's records.
    patient_id, encounter_id = fresh_patient_with_encounter(fhir)
    conditions = [build_suggested_condition(patient_id, encounter_id, SuggestedCode(ICD10CM, f"C{i:02d}.9"), "v")
                  for i in range(9)]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": c, "request": {"method": "POST", "url": "Condition",
                                    "ifNoneExist": f"identifier={SUGGESTION_IDENTIFIER_SYSTEM}|{c['identifier'][0]['value']}"}}
        for c in conditions]}
    if fhir_server_kind != "medplum":
        reply = fhir.request("POST", "", body=bundle).json()
        assert len(reply["entry"]) == 9
        assert all(e["response"]["status"][:3] in ("200", "201") for e in reply["entry"])
        return
    with pytest.raises(FhirServerError) as err:
        fhir.request("POST", "", body=bundle)
    assert err.value.status == 400 and "at most 8" in str(err.value)


# ---------------------------------------------------------------- retries and errors
class FlakyFhir(BaseHTTPRequestHandler):
    """A tiny real HTTP server: answers 503 `failures` times, then a Patient."""

    failures = 0
    seen: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if type(self).failures > 0:
            type(self).failures -= 1
            body, status = {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "transient", "diagnostics": "warming up"}]}, 503
        else:
            body, status = {"resourceType": "Patient", "id": "p1"}, 200
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FlakyFhir)
    FlakyFhir.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    httpd.shutdown()
    httpd.server_close()


def test_retries_5xx_with_backoff_and_sends_the_bearer_token(flaky_server):
    FlakyFhir.failures = 2
    server = FhirServer.from_cds_request(flaky_server, {"access_token": "tok-123", "token_type": "Bearer"},
                                         timeout=5, backoff_s=0.01)
    assert server.read("Patient", "p1")["id"] == "p1"
    assert [p for p, _ in FlakyFhir.seen] == ["/fhir/Patient/p1"] * 3
    assert {a for _, a in FlakyFhir.seen} == {"Bearer tok-123"}


def test_gives_up_after_retries_with_unavailable(flaky_server):
    FlakyFhir.failures = 10
    server = FhirServer(flaky_server, retries=2, backoff_s=0.01)
    with pytest.raises(FhirServerUnavailable) as err:
        server.read("Patient", "p1")
    assert err.value.status == 503 and "warming up" in str(err.value)
    assert len(FlakyFhir.seen) == 3


def test_unreachable_server_is_unavailable():
    from tests.conftest import free_port

    server = FhirServer(f"http://127.0.0.1:{free_port()}/fhir", timeout=1, retries=1, backoff_s=0.01)
    with pytest.raises(FhirServerUnavailable, match="unavailable"):
        server.patient_resources("p1")


def test_paging_links_to_another_origin_are_refused(fhir):
    with pytest.raises(FhirServerError, match="leads outside the FHIR server"):
        fhir.request("GET", "http://203.0.113.9/fhir/Patient?_getpages=x")
