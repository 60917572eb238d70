"""The active problem list as of each visit, rebuilt from problem-list Conditions of any
state: statuses, onsets, recorded dates and abatements as exports write them, with the
messy cases (no status, entered-in-error, abated without a date, our own suggestions)."""
from __future__ import annotations

from fhir_assist.adapter.report import IngestReport
from fhir_assist.adapter.timeline import build_timelines
from fhir_assist.fhir_server import build_suggested_condition
from mappings import codesystems as cs

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
VISITS = ("2022-01-10", "2022-05-01", "2022-09-01")


def _encounter(i, cited=()):
    day = VISITS[i]
    resource = {"resourceType": "Encounter", "id": f"e{i}", "status": "finished", "class": {"code": "AMB"},
                "subject": {"reference": "Patient/p"},
                "period": {"start": f"{day}T09:00:00Z", "end": f"{day}T09:30:00Z"}}
    if cited:
        resource["diagnosis"] = [{"condition": {"reference": f"Condition/{c}"}, "rank": r}
                                 for r, c in enumerate(cited, 1)]
    return resource


def _problem(cid, code, status="active", category="problem-list-item", **fields):
    resource = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p"},
                "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
                "code": {"coding": [{"system": cs.ICD10CM, "code": code}]}, **fields}
    if status is not None:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    return resource


def _timeline(*conditions, cited=((), (), ())):
    report = IngestReport()
    resources = [{"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1960-01-01"}]
    resources += [_encounter(i, c) for i, c in enumerate(cited)] + list(conditions)
    (timeline,) = build_timelines(resources, report)
    return timeline, report


def _lists(timeline):
    return [sorted(c.code for c in v.problem_list) for v in timeline.visits]


def test_active_recorded_before_counts_at_every_later_visit():
    timeline, report = _timeline(_problem("a", "I10", recordedDate="2021-03-01"),
                                 _problem("b", "E11.9", recordedDate="2022-05-01T09:00:00Z"))
    # b was written down at the second visit: on the list only from the third on
    assert _lists(timeline) == [["I10"], ["I10"], ["E11.9", "I10"]]
    assert report.events["problem-list Conditions read"] == 2


def test_onset_places_a_problem_without_recorded_date():
    timeline, _ = _timeline(_problem("a", "J45.909", onsetDateTime="2022-02"),
                            _problem("b", "K21.9", onsetPeriod={"start": "2021-12-01"}))
    assert _lists(timeline) == [["K21.9"], ["J45.909", "K21.9"], ["J45.909", "K21.9"]]


def test_abated_problem_counts_only_before_its_abatement():
    timeline, _ = _timeline(
        _problem("a", "F32.A", "resolved", recordedDate="2021-06-01", abatementDateTime="2022-03-01"),
        _problem("b", "F17.210", "inactive", recordedDate="2021-06-01",
                 abatementPeriod={"start": "2022-06-15"}),
        # an active status with a dated abatement: the date wins
        _problem("c", "M54.5", "active", recordedDate="2021-06-01", abatementDateTime="2022-01-01"))
    assert _lists(timeline) == [["F17.210", "F32.A"], ["F17.210"], []]


def test_what_cannot_be_placed_or_was_never_active_never_counts():
    timeline, report = _timeline(
        _problem("no-status", "I10", None, recordedDate="2021-01-01"),
        _problem("no-date", "E78.5"),
        _problem("resolved-undated", "N39.0", "resolved", recordedDate="2021-01-01"),
        _problem("abated-text", "G43.909", "active", recordedDate="2021-01-01", abatementString="childhood"),
        _problem("odd-status", "R51.9", "unknown", recordedDate="2021-01-01"))
    assert _lists(timeline) == [[], [], []]
    events = report.events
    assert events["problem-list Conditions without clinicalStatus (never counted active)"] == 1
    assert events["problem-list Conditions without recordedDate or onset (never counted active)"] == 1
    assert events["problem-list Conditions abated at no readable date (never counted active)"] == 1
    assert events["problem-list Conditions with an unknown clinicalStatus (never counted active)"] == 1


def test_entered_in_error_refuted_and_our_own_suggestions_are_left_out():
    error = _problem("err", "I48.91", recordedDate="2021-01-01",
                     verificationStatus={"coding": [{"code": "entered-in-error"}]})
    refuted = _problem("ref", "I50.9", recordedDate="2021-01-01",
                       verificationStatus={"coding": [{"code": "refuted"}]})
    ours = build_suggested_condition("p", "e0", {"system": cs.ICD10CM, "code": "N18.3", "score": 0.8,
                                                 "rank": 1}, "test-model")
    ours |= {"id": "ours", "recordedDate": "2021-01-01",
             "category": [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}]}
    kept = _problem("kept", "I10", recordedDate="2021-01-01")
    timeline, report = _timeline(error, refuted, ours, kept)
    assert _lists(timeline) == [["I10"], ["I10"], ["I10"]]
    assert report.skipped["provisional Condition suggested by this service"] == 1
    assert report.skipped["Condition entered-in-error"] == 1 and report.skipped["Condition refuted"] == 1


def test_encounter_diagnoses_are_visit_codes_not_problems():
    diagnosis = _problem("d", "J06.9", "active", category="encounter-diagnosis",
                         recordedDate="2022-01-10T09:10:00Z", encounter={"reference": "Encounter/e0"})
    problem = _problem("pl", "I10", recordedDate="2021-01-01")
    uncited = _problem("pl2", "E66.9", recordedDate="2022-05-01T09:10:00Z")
    timeline, report = _timeline(diagnosis, problem, uncited, cited=((), ("pl",), ()))
    assert _lists(timeline) == [["I10"], ["I10"], ["E66.9", "I10"]]
    # a problem reaches a visit's codes only where the visit cites it; one dated inside a
    # visit but cited by none stays on the list and off the visit
    assert [[c.code for c in v.diagnoses] for v in timeline.visits] == [["J06.9"], ["I10"], []]
    assert report.events["problem-list Conditions cited by no visit (problem list only)"] == 1
    assert [e.condition_id for e in timeline.problems] == ["pl", "pl2"]


def test_coding_examples_carry_the_list_as_of_their_visit():
    from fhir_assist.tasks.coding.encounters import collect_encounters

    timeline, _ = _timeline(
        _problem("a", "I10", recordedDate="2021-03-01"),
        _problem("b", "F32.A", "resolved", recordedDate="2021-06-01", abatementDateTime="2022-03-01"),
        _problem("dx0", "J06.9", category="encounter-diagnosis", recordedDate="2022-01-10T09:10:00Z"),
        _problem("dx1", "J06.9", category="encounter-diagnosis", recordedDate="2022-05-01T09:10:00Z"),
        _problem("dx2", "J06.9", category="encounter-diagnosis", recordedDate="2022-09-01T09:10:00Z"))
    encounters, _ = collect_encounters([timeline], seed=0, progress=False)
    assert [e.problems for e in encounters] == [["icd10:F32.A", "icd10:I10"], ["icd10:I10"], ["icd10:I10"]]
