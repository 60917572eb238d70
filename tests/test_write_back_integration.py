"""Write-back on encounter-discharge against the real test FHIR server, as an EHR uses it:
the call names the FHIR server and carries no prefetch, so the service reads the record
as the server holds it, including the provisional Conditions an earlier call wrote.

- a repeated call writes nothing new and answers the same card;
- after new data, provisional Conditions the new list no longer holds are marked
  entered-in-error (kept for the audit trail), the rest are left as they are;
- a one-problem patient gets at most the cap, and only codes above the precision floor.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.fhir_server import FhirServer
from fhir_assist.own_resources import is_our_suggestion, verification_status
from tests.test_cds_integration import call, service

pytestmark = pytest.mark.integration

DISCHARGE = "coding-suggestions-encounter-discharge"


def _put(base_url: str, resources: list[dict]) -> None:
    # One transaction: Encounter.diagnosis and Condition.encounter cite each other, and a server
    # that checks references (HAPI) resolves them only within one transaction.
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
    response = requests.post(base_url, json=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=60)
    response.raise_for_status()
    failed = [e["response"]["status"] for e in response.json().get("entry", [])
              if not str(e["response"]["status"]).startswith("20")]
    assert not failed, failed[:5]


def _load_at_discharge(base_url: str, resources: list[dict], patient_id: str) -> dict:
    """Load the record as it stands at discharge (the last encounter not coded yet) and
    return the discharge call that makes the service read it from the server."""
    prefetched = build_request(BY_ID[DISCHARGE], resources, patient_id)["prefetch"]
    loaded = {}
    for value in prefetched.values():
        items = [e["resource"] for e in value.get("entry", [])] if value and value.get("entry") is not None \
            else ([value] if value else [])
        loaded.update({(r["resourceType"], r["id"]): r for r in items})
    _put(base_url, list(loaded.values()))
    return build_request(BY_ID[DISCHARGE], resources, patient_id, prefetch=False, fhir_server=base_url)


def _ours(server: FhirServer, encounter: str) -> list[dict]:
    return [c for c in server.search("Condition", {"encounter": f"Encounter/{encounter}"}) if is_our_suggestion(c)]


def _card(answer: dict) -> tuple:
    (card,) = answer["cards"]
    detail = card["detail"]
    return card["summary"], tuple(s["label"] for s in card["suggestions"]), detail


@pytest.fixture(scope="module")
def patients(hook_cohort):
    """Copies of six cohort patients under ids of their own (every id of a synthetic patient's
    resources starts with the patient id), so no other test's data on the shared server meets ours."""
    by_patient, usable = hook_cohort
    renamed = {}
    for pid in usable[8:14]:
        renamed[f"{pid}wb"] = json.loads(json.dumps(by_patient[pid]).replace(pid, f"{pid}wb"))
    return renamed, list(renamed)


def test_repeated_discharge_writes_nothing_new_and_answers_the_same_card(demo_models, fhir_base_url, patients):
    by_patient, chosen = patients
    body = _load_at_discharge(fhir_base_url, by_patient[chosen[0]], chosen[0])
    encounter = body["context"]["encounterId"]
    server = FhirServer(fhir_base_url)
    with service(demo_models, write_back_precision=0.0, allowed_fhir_servers=(fhir_base_url,)) as (base_url, _):
        first = call(base_url, DISCHARGE, body)
        assert first.status_code == 200, first.text[:500]
        written = _ours(server, encounter)
        count = len(server.search("Condition", {"patient": f"Patient/{chosen[0]}"}))
        assert written, "the first call writes its recommended codes"
        second = call(base_url, DISCHARGE, {**body, "hookInstance": str(uuid.uuid4())})
        assert second.status_code == 200, second.text[:500]
    # The service read its own provisional Conditions back from the server, and ignored them.
    assert len(server.search("Condition", {"patient": f"Patient/{chosen[0]}"})) == count
    again = _ours(server, encounter)
    assert sorted(c["id"] for c in again) == sorted(c["id"] for c in written)
    assert [c["meta"].get("versionId") for c in sorted(again, key=lambda c: c["id"])] == \
        [c["meta"].get("versionId") for c in sorted(written, key=lambda c: c["id"])], "nothing was updated"
    assert _card(second.json())[:2] == _card(first.json())[:2]
    # Both cards confirm the same Conditions rather than creating new ones.
    assert all(s["label"].startswith("Confirm ") for s in second.json()["cards"][0]["suggestions"]
               if s.get("isRecommended") and any(a["type"] == "update" for a in s["actions"]))


def test_new_data_supersedes_what_the_earlier_call_wrote(demo_models, fhir_base_url, patients):
    by_patient, chosen = patients
    pid = chosen[1]
    body = _load_at_discharge(fhir_base_url, by_patient[pid], pid)
    encounter = body["context"]["encounterId"]
    server = FhirServer(fhir_base_url)
    with service(demo_models, write_back_precision=0.0, allowed_fhir_servers=(fhir_base_url,)) as (base_url, _):
        assert call(base_url, DISCHARGE, body).status_code == 200
        before = {c["id"]: c for c in _ours(server, encounter)}
        # New data: the medications and procedures of other patients' stays are ordered in
        # this encounter, until the recommended list changes.
        changed = False
        for donor in chosen[2:]:
            extra = []
            for r in by_patient[donor]:
                if r["resourceType"] in ("MedicationRequest", "Procedure"):
                    moved = {**r, "id": f"{r['id']}-moved", "subject": {"reference": f"Patient/{pid}"}}
                    moved["encounter"] = {"reference": f"Encounter/{encounter}"}
                    for key in ("authoredOn", "performedDateTime"):
                        if key in moved:
                            moved[key] = (server.read("Encounter", encounter)["period"]["start"])
                    moved.pop("performedPeriod", None)
                    extra.append(moved)
            _put(fhir_base_url, extra)
            response = call(base_url, DISCHARGE, {**body, "hookInstance": str(uuid.uuid4())})
            assert response.status_code == 200, response.text[:500]
            after = {c["id"]: c for c in _ours(server, encounter)}
            live = {i for i, c in after.items() if verification_status(c) == "provisional"}
            if live != set(before):
                changed = True
                break
    assert changed, "the new data changed the recommended codes"
    dropped = set(before) - live
    assert dropped, "some earlier suggestion is no longer recommended"
    for cid in dropped:
        assert verification_status(after[cid]) == "entered-in-error"
        assert "superseded" in after[cid]["note"][-1]["text"]
    for cid in set(before) & live:          # still recommended: the same Condition, untouched
        assert after[cid]["meta"].get("versionId") == before[cid]["meta"].get("versionId")
    codes = [(cd["system"], cd["code"]) for c in after.values() for cd in c["code"]["coding"]]
    assert len(codes) == len(set(codes)), "one Condition per code, never a second"
    detail = response.json()["cards"][0]["detail"]
    assert f"{len(dropped)} earlier suggestion(s)" in detail and "entered-in-error" in detail


def test_one_problem_patient_gets_at_most_the_cap_and_only_codes_above_the_floor(demo_models, fhir_base_url):
    pid, old, now = "one-problem", "one-problem-old", "one-problem-ed"
    resources = [
        {"resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1961-04-02"},
        {"resourceType": "Encounter", "id": old, "status": "finished", "class": {"code": "AMB"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": "2023-02-01T09:00:00Z",
                                                                "end": "2023-02-01T09:30:00Z"}},
        {"resourceType": "Encounter", "id": now, "status": "finished", "class": {"code": "EMER"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": "2023-06-01T21:00:00Z",
                                                                "end": "2023-06-02T02:00:00Z"}},
        {"resourceType": "Condition", "id": "one-problem-dx", "subject": {"reference": f"Patient/{pid}"},
         "encounter": {"reference": f"Encounter/{old}"}, "recordedDate": "2023-02-01T09:20:00Z",
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]}},
        {"resourceType": "MedicationRequest", "id": "one-problem-rx", "status": "active", "intent": "order",
         "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{now}"},
         "authoredOn": "2023-06-01T22:00:00Z",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                   "code": "6809", "display": "metformin"}]}},
    ]
    _put(fhir_base_url, resources)
    server = FhirServer(fhir_base_url)
    body = build_request(BY_ID[DISCHARGE], resources, pid, encounter_id=now, prefetch=False,
                         fhir_server=fhir_base_url)
    suggester = demo_models.get("icd-ranker").suggester
    for precision, cap in ((0.5, 15), (0.0, 3)):
        floor = suggester.write_floor(precision)
        with service(demo_models, write_back_precision=precision, write_back_max=cap,
                     allowed_fhir_servers=(fhir_base_url,)) as (base_url, _):
            response = call(base_url, DISCHARGE, {**body, "hookInstance": str(uuid.uuid4())})
        assert response.status_code == 200, response.text[:500]
        card = response.json()["cards"][0]
        written = [c for c in _ours(server, now) if verification_status(c) == "provisional"]
        assert len(written) <= cap
        recommended = {s["label"].split()[1] for s in card["suggestions"] if s.get("isRecommended")}
        for condition in written:
            score = next(e["valueDecimal"] for e in condition["extension"] if e["url"].endswith("suggestion-score"))
            assert score >= floor - 1e-6, (condition["code"], score, floor)
            assert condition["code"]["coding"][0]["code"] in recommended
    # With no floor and a cap of three, the cap is what binds.
    assert len(written) == min(3, len(recommended))


def test_z_code_only_visit_gets_no_codes_from_the_prior_or_the_history(demo_models, fhir_base_url):
    pid, old, now = "vaccinated", "vaccinated-stay", "vaccinated-shot"
    resources = [
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1948-09-12"},
        {"resourceType": "Encounter", "id": old, "status": "finished", "class": {"code": "IMP"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": "2023-01-03T09:00:00Z",
                                                                "end": "2023-01-09T12:00:00Z"}},
        {"resourceType": "Encounter", "id": now, "status": "finished", "class": {"code": "AMB"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": "2023-10-02T10:00:00Z",
                                                                "end": "2023-10-02T10:15:00Z"}},
        *[{"resourceType": "Condition", "id": f"vaccinated-dx-{i}", "subject": {"reference": f"Patient/{pid}"},
           "encounter": {"reference": f"Encounter/{old}"}, "recordedDate": "2023-01-05T09:00:00Z",
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}}
          for i, code in enumerate(("I50.9", "I10", "E11.9", "N18.3"))],
        {"resourceType": "Condition", "id": "vaccinated-z23", "subject": {"reference": f"Patient/{pid}"},
         "encounter": {"reference": f"Encounter/{now}"}, "recordedDate": "2023-10-02T10:05:00Z",
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z23"}]}},
    ]
    _put(fhir_base_url, resources)
    body = build_request(BY_ID[DISCHARGE], resources, pid, encounter_id=now, prefetch=False,
                         fhir_server=fhir_base_url, strip_encounter_diagnoses=False)
    with service(demo_models, write_back_precision=0.0, allowed_fhir_servers=(fhir_base_url,)) as (base_url, _):
        response = call(base_url, DISCHARGE, body)
    assert response.status_code == 200, response.text[:500]
    (card,) = response.json()["cards"]
    assert any(s.get("isRecommended") for s in card["suggestions"]), "the card still offers codes"
    assert _ours(FhirServer(fhir_base_url), now) == [], "nothing written without the visit's own evidence"
    assert "only with Z-codes" in card["detail"] and "0 recommended code(s) recorded" in card["detail"]
