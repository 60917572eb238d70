"""Encounters → visits: episodes instead of partOf root-folding, open stays, reason-only and Z-only visits.

Hand-written resources shaped like an outpatient-heavy EHR export.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fhir_assist.adapter.encode import reason_tokens, visit_tokens
from fhir_assist.adapter.report import IngestReport
from fhir_assist.adapter.timeline import build_timelines
from mappings import codesystems as cs

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
UTC = timezone.utc
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-02-01"}


def encounter(eid, cls, start, end=None, part_of=None, status="finished", reasons=(), diagnoses=()):
    resource = {"resourceType": "Encounter", "id": eid, "status": status, "class": {"system": ACT, "code": cls},
                "subject": {"reference": "Patient/p1"}, "period": {"start": start}}
    if end:
        resource["period"]["end"] = end
    if part_of:
        resource["partOf"] = {"reference": f"Encounter/{part_of}"}
    if reasons:
        resource["reasonCode"] = [{"coding": [{"system": cs.ICD10CM, "code": c}]} for c in reasons]
    if diagnoses:
        resource["diagnosis"] = [{"condition": {"reference": f"Condition/{c}"}} for c in diagnoses]
    return resource


def condition(cid, code, encounter_id=None, recorded="2024-03-01T10:00:00Z"):
    resource = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": cs.ICD10CM, "code": code}]}, "recordedDate": recorded}
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return resource


def visits(resources, **options):
    report = IngestReport()
    (timeline,) = build_timelines([PATIENT, *resources], report, **options)
    return timeline.visits, report


def test_admission_touching_its_ed_visit_is_one_inpatient_visit_on_the_admission():
    ed = encounter("ed", "EMER", "2024-03-01T08:00:00Z", "2024-03-01T13:00:00Z")
    admission = encounter("adm", "IMP", "2024-03-01T13:30:00Z", "2024-03-05T11:00:00Z", part_of="ed")
    (visit,), report = visits([ed, admission, condition("c1", "J18.9", "adm"), condition("c2", "R07.9", "ed")])
    assert visit.encounter_class == "IMP"                 # the highest acuity, not the root's EMER
    assert visit.encounter_id == "adm" and visit.encounter_ids == ["adm", "ed"]
    assert visit.covers("ed") and visit.covers("adm") and not visit.covers("other")
    assert visit.start == datetime(2024, 3, 1, 8, tzinfo=UTC) and visit.end == datetime(2024, 3, 5, 11, tzinfo=UTC)
    assert {c.code for c in visit.diagnoses} == {"J18.9", "R07.9"}
    assert visit.linked_to is None and not visit.open
    assert report.events["sub-encounters joined into one visit (overlapping or touching partOf)"] == 1


def test_readmission_part_of_an_earlier_stay_stays_its_own_visit_with_the_link_kept():
    index = encounter("stay1", "IMP", "2024-03-01T08:00:00Z", "2024-03-05T11:00:00Z")
    readmission = encounter("stay2", "IMP", "2024-03-21T09:00:00Z", "2024-03-24T12:00:00Z", part_of="stay1")
    (first, second), report = visits([index, readmission, condition("c1", "I50.9", "stay2")])
    assert [first.encounter_id, second.encounter_id] == ["stay1", "stay2"]
    assert second.linked_to == "stay1" and second.part_of == "stay1" and first.linked_to is None
    assert first.end == datetime(2024, 3, 5, 11, tzinfo=UTC)    # not stretched to the readmission
    assert [c.code for c in second.diagnoses] == ["I50.9"] and not first.diagnoses
    assert report.events["Encounter.partOf links between separate visits (kept as Visit.linked_to)"] == 1


def test_episode_gap_is_configurable():
    ed = encounter("ed", "EMER", "2024-03-01T01:00:00Z", "2024-03-01T04:00:00Z")
    admission = encounter("adm", "IMP", "2024-03-01T12:00:00Z", "2024-03-03T10:00:00Z", part_of="ed")
    separate, _ = visits([ed, admission])                         # 8 h apart: over the default 6 h
    assert [v.encounter_id for v in separate] == ["ed", "adm"] and separate[1].linked_to == "ed"
    joined, _ = visits([ed, admission], episode_gap=timedelta(hours=12))
    assert [v.encounter_ids for v in joined] == [["adm", "ed"]]


def test_open_stay_is_marked_open_and_keeps_no_invented_end():
    ed = encounter("ed", "EMER", "2024-03-01T08:00:00Z", "2024-03-01T12:00:00Z")
    admission = encounter("adm", "IMP", "2024-03-01T12:00:00Z", None, part_of="ed", status="in-progress")
    icu = encounter("icu", "IMP", "2024-03-02T02:00:00Z", "2024-03-03T02:00:00Z", part_of="adm")
    (visit,), report = visits([ed, admission, icu])
    assert visit.open and visit.end is None and visit.encounter_ids == ["adm", "ed", "icu"]
    assert report.events["visits still in progress (open, no end)"] == 1
    (alone,), _ = visits([encounter("adm", "IMP", "2024-03-01T12:00:00Z", None, status="in-progress")])
    assert alone.open and alone.end is None


def test_reason_only_and_z_code_only_visits_are_kept_and_labelled():
    checkup = encounter("chk", "AMB", "2024-01-10T09:00:00Z", "2024-01-10T09:40:00Z", reasons=["Z00.00"])
    vaccine = encounter("vac", "AMB", "2024-02-10T09:00:00Z", "2024-02-10T09:20:00Z", diagnoses=["z23"])
    follow = encounter("fu", "AMB", "2024-04-10T09:00:00Z", "2024-04-10T09:30:00Z", reasons=["E11.9"],
                       diagnoses=["dm", "z23"])
    nothing = encounter("none", "VR", "2024-05-10T09:00:00Z", "2024-05-10T09:20:00Z")
    resources = [checkup, vaccine, follow, nothing, condition("z23", "Z23", recorded="2024-02-10T09:05:00Z"),
                 condition("dm", "E11.9", recorded="2020-01-01T00:00:00Z")]
    found, report = visits(resources)
    by_id = {v.encounter_id: v for v in found}
    assert by_id["chk"].coding == "reason-only" and [c.code for c in by_id["chk"].reason_codes] == ["Z00.00"]
    assert not by_id["chk"].diagnoses
    assert by_id["vac"].coding == "z-codes-only" and [c.code for c in by_id["vac"].diagnoses] == ["Z23"]
    assert by_id["fu"].coding == "diagnosed" and [c.code for c in by_id["fu"].reason_codes] == ["E11.9"]
    assert by_id["fu"].reason_codes != by_id["fu"].diagnoses       # reasons kept apart from diagnoses
    assert by_id["none"].coding == "uncoded"
    assert reason_tokens(by_id["chk"]) == ["reason:icd10:Z00.00"]     # model inputs, apart from diagnoses
    assert visit_tokens(by_id["fu"])["reasons"] == ["reason:icd10:E11.9"]
    assert "reason:icd10:E11.9" not in visit_tokens(by_id["fu"])["diagnoses"]
    assert report.events["visits kept with reason only"] == 1
    assert report.events["visits kept with z codes only"] == 1


def test_reason_only_check_up_is_a_coding_example_with_its_reason_as_input_and_label():
    from fhir_assist.tasks.coding.encounters import collect_encounters, visit_inputs

    checkup = encounter("chk", "AMB", "2024-01-10T09:00:00Z", "2024-01-10T09:40:00Z", reasons=["Z00.00"])
    follow = encounter("fu", "AMB", "2024-04-10T09:00:00Z", "2024-04-10T09:30:00Z", reasons=["E11.9"],
                       diagnoses=["dm"])
    report = IngestReport()
    timelines = build_timelines([PATIENT, checkup, follow,
                                 condition("dm", "E11.9", recorded="2020-01-01T00:00:00Z")], report)
    examples, stats = collect_encounters(timelines, seed=0, progress=False)
    by_id = {e.encounter_id: e for e in examples}
    assert set(by_id) == {"chk", "fu"}                     # the check-up is no longer dropped
    assert by_id["chk"].procedures == ["reason:icd10:Z00.00"]
    assert any("Z00" in token for token in by_id["chk"].labels["3char"])
    assert stats["reason-only visits labelled with their reasons"] == 1
    # The follow-up is labelled by its diagnoses; its reason is an input only.
    assert visit_inputs(timelines[0].visits[1])[1] == ["reason:icd10:E11.9"]
