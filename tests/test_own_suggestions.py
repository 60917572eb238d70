"""The service's own provisional Conditions never reach a model as input.

A suggestion written back by an earlier call looks like any encounter-diagnosis
Condition; read back as one, a retried call would move on to the next codes.
"""
from __future__ import annotations

from fhir_assist.adapter.encode import Vocabulary, diagnosis_tokens, multi_hot
from fhir_assist.adapter.report import IngestReport
from fhir_assist.adapter.timeline import build_timelines
from fhir_assist.fhir_server import build_suggested_condition
from fhir_assist.own_resources import is_our_suggestion, is_unreviewed_suggestion
from mappings import codesystems as cs

SKIP = "provisional Condition suggested by this service"


def _record():
    def encounter(eid, start, end):
        return {"resourceType": "Encounter", "id": eid, "status": "finished", "class": {"code": "IMP"},
                "subject": {"reference": "Patient/p"}, "period": {"start": start, "end": end}}

    def condition(cid, eid, code, recorded):
        return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p"},
                "encounter": {"reference": f"Encounter/{eid}"}, "recordedDate": recorded,
                "code": {"coding": [{"system": cs.ICD10CM, "code": code}]}}

    return [
        {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950-02-01"},
        encounter("e1", "2022-01-10T08:00:00Z", "2022-01-12T09:00:00Z"),
        encounter("e2", "2022-05-01T08:00:00Z", "2022-05-04T09:00:00Z"),
        condition("c1", "e1", "I10", "2022-01-10T10:00:00Z"),
        condition("c2", "e2", "E11.9", "2022-05-01T10:00:00Z"),
    ]


def _suggested(encounter, code, status=None):
    resource = build_suggested_condition("p", encounter, {"system": cs.ICD10CM, "code": code, "score": 0.7,
                                                          "rank": 1}, "test-model")
    resource["id"] = f"s-{encounter}-{code.replace('.', '')}"
    if status:
        resource["verificationStatus"]["coding"][0]["code"] = status
    return resource


def _encoded(resources, vocabulary):
    report = IngestReport()
    (timeline,) = build_timelines(resources, report)
    rows = [vocabulary.encode(diagnosis_tokens(v)) for v in timeline.visits]
    return timeline, multi_hot(rows, len(vocabulary)), report


def test_own_provisional_conditions_are_not_model_inputs():
    guesses = [_suggested("e1", "N18.3"), _suggested("e2", "J18.9"), _suggested("e2", "I50.9")]
    vocabulary = Vocabulary(["icd10:I10", "icd10:E11.9", "icd10:N18.3",
                             "icd10:J18.9", "icd10:I50.9"])
    clean_timeline, clean, _ = _encoded(_record(), vocabulary)
    timeline, encoded, report = _encoded(_record() + guesses, vocabulary)

    # The same features with and without our earlier guesses on the server.
    assert encoded.tolist() == clean.tolist()
    assert encoded.sum().item() == 2 and encoded[:, 0].sum().item() == 0   # nothing out of vocabulary
    for code in ("N18.3", "J18.9", "I50.9"):
        assert encoded[:, vocabulary.encode([f"icd10:{code}"])[0]].sum().item() == 0
    assert [c.code for v in timeline.visits for c in v.diagnoses] == ["I10", "E11.9"]
    assert report.skipped[SKIP] == 3


def test_a_suggestion_a_coder_confirmed_is_a_diagnosis():
    vocabulary = Vocabulary(["icd10:I10", "icd10:E11.9", "icd10:J18.9"])
    resources = _record() + [_suggested("e2", "J18.9", status="confirmed")]
    timeline, encoded, report = _encoded(resources, vocabulary)
    assert encoded[1, vocabulary.encode(["icd10:J18.9"])[0]].item() == 1
    assert report.skipped[SKIP] == 0


def test_recognised_by_tag_or_by_identifier_alone():
    tagged = _suggested("e1", "N18.3")
    by_tag = {**tagged, "identifier": []}
    by_identifier = {k: v for k, v in tagged.items() if k != "meta"}
    assert is_our_suggestion(by_tag) and is_our_suggestion(by_identifier)
    assert is_unreviewed_suggestion(by_tag) and is_unreviewed_suggestion(by_identifier)
    other = {"resourceType": "Condition", "meta": {"tag": [{"system": "urn:x", "code": "suggested"}]},
             "identifier": "not-a-list"}
    assert not is_our_suggestion(other) and not is_our_suggestion(None)
