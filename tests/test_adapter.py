"""FHIR adapter: reading messy exports, timelines, encoding.

The fixtures under tests/data/messy/ are hand-written the way other EHRs export
(see its README); none come from our generator.
"""
from __future__ import annotations

import gzip
import json
import random
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import torch

from fhir_assist.adapter.encode import (
    OOV_TOKEN, Vocabulary, batches, code_token, multi_hot, note_tokens, parse_token,
    split_patients, tokenize_note, visit_tokens,
)
from fhir_assist.adapter.bundles import resources_from_bundle, resources_from_prefetch
from fhir_assist.adapter.files import iter_resources
from fhir_assist.adapter.report import FhirInputError, IngestReport
from fhir_assist.adapter.validate import validate_resource
from fhir_assist.adapter.timeline import build_timelines, load_cohort
from fhir_assist.adapter.visits import Code
from fhir_assist.fhir.datetimes import parse_fhir_datetime
from fhir_assist.fhir.references import reference_id
from mappings import codesystems as cs

DATA = Path(__file__).parent / "data" / "messy"
UTC = timezone.utc


def _load_json(name: str):
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="module")
def bulk():
    return load_cohort(DATA / "bulk", progress=False)


def _visit(cohort_or_timelines, patient_id, encounter_id):
    timelines = getattr(cohort_or_timelines, "timelines", cohort_or_timelines)
    patient = next(t for t in timelines if t.patient_id == patient_id)
    return next(v for v in patient.visits if v.encounter_id == encounter_id)


def _codes(codes):
    return [(c.system, c.code) for c in codes]


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def test_bulk_export_directory_reads_every_file_and_reports_the_bad_line():
    report = IngestReport()
    resources = list(iter_resources(DATA / "bulk", report=report))
    assert report.resources["Encounter"] == 7          # two files for one type
    assert report.resources["Condition"] == 14         # 15 lines, one of them invalid JSON
    assert report.resources["Observation"] == 1
    assert len(resources) == sum(report.resources.values())
    assert report.problem_count == 1
    problem = report.problems[0]
    assert problem.source.endswith("Condition.ndjson:14")
    assert "invalid JSON" in problem.message
    assert report.skipped["invalid JSON"] == 1
    # The manifest beside the NDJSON files is not read (nor would a stats.json be).
    assert report.events["files beside the export's top-level files not read"] == 1
    assert "Condition.ndjson:14" in report.summary()
    assert report.to_dict()["problem_count"] == 1


def test_gzipped_ndjson_and_several_files_per_type(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(DATA / "bulk", export)
    for name in ("Condition.ndjson", "Encounter_2.ndjson"):
        with open(export / name, "rb") as src, gzip.open(export / (name + ".gz"), "wb") as dst:
            dst.write(src.read())
        (export / name).unlink()
    plain, zipped = IngestReport(), IngestReport()
    ids_plain = sorted((r["resourceType"], r.get("id")) for r in iter_resources(DATA / "bulk", report=plain))
    ids_zipped = sorted((r["resourceType"], r.get("id")) for r in iter_resources(export, report=zipped))
    assert ids_plain == ids_zipped
    assert zipped.problems[0].source.endswith("Condition.ndjson.gz:14")


def test_one_bad_line_in_ten_thousand_keeps_the_rest(tmp_path):
    path = tmp_path / "Condition.ndjson"
    with open(path, "w") as out:
        for i in range(1, 10_001):
            if i == 5_000:
                out.write('{"resourceType":"Condition","id":"c5000","code":{"coding":[\n')
                continue
            out.write(json.dumps({"resourceType": "Condition", "id": f"c{i}",
                                  "code": {"coding": [{"system": cs.ICD10CM, "code": "I10"}]},
                                  "subject": {"reference": f"Patient/p{i % 97}"}}) + "\n")
    report = IngestReport()
    count = sum(1 for _ in iter_resources(path, report=report))
    assert count == 9_999
    assert report.problem_count == 1
    assert report.problems[0].source == f"{path}:5000"


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    lines = "".join(json.dumps({"resourceType": "Patient", "id": f"p{i}", "gender": "female"}) + "\n"
                    for i in range(2000))
    blob = gzip.compress(lines.encode())
    path = tmp_path / "Patient.ndjson.gz"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    report = IngestReport()
    count = sum(1 for _ in iter_resources(path, report=report))
    assert 0 < count < 2000
    assert report.problem_count == 1 and "unreadable file" in report.problems[0].message


def test_transaction_bundle_with_urn_uuid_references():
    report = IngestReport()
    resources = resources_from_bundle(_load_json("bundles/transaction.json"), report=report)
    by_type = {r["resourceType"]: r for r in resources}
    assert by_type["Patient"]["id"] == "8c5a3f0e-2b1d-4c6e-9f7a-1d2e3f4a5b6c"
    assert by_type["Encounter"]["subject"]["reference"] == "Patient/8c5a3f0e-2b1d-4c6e-9f7a-1d2e3f4a5b6c"
    assert report.skipped["bundle entry with a DELETE request"] == 1
    (timeline,) = build_timelines(resources, report)
    (visit,) = timeline.visits
    assert visit.encounter_id == "0f1e2d3c-4b5a-4978-8675-a1b2c3d4e5f6"
    assert _codes(visit.diagnoses) == [(cs.ICD10CM, "K35.80")]
    assert _codes(visit.procedures) == [(cs.ICD10PCS, "0DTJ4ZZ")]
    assert timeline.sex == "female" and visit.age == pytest.approx(48.18, abs=0.01)


def test_searchset_bundle_with_absolute_references_and_an_outcome_entry():
    report = IngestReport()
    resources = resources_from_bundle(_load_json("bundles/searchset.json"), report=report)
    assert "OperationOutcome" not in {r["resourceType"] for r in resources}
    assert report.skipped["search outcome (OperationOutcome) in a searchset"] == 1
    (timeline,) = build_timelines(resources, report)
    assert [v.encounter_id for v in timeline.visits] == ["v1", "v2"]
    assert _codes(timeline.visits[0].diagnoses) == [(cs.ICD10CM, "M54.5")]
    # An ambulatory visit with only a free-text reason: kept, with nothing coded.
    assert timeline.visits[1].diagnoses == [] and timeline.visits[1].reason_codes == []
    assert report.unknown_codes["(text only)"] == 1


def test_collection_bundle_with_a_nested_bundle():
    report = IngestReport()
    resources = list(iter_resources(DATA / "bundles" / "collection.json", report=report))
    assert {r["id"] for r in resources} == {"c.42", "c.42.1", "c.42.2", "c.42.dx"}
    (timeline,) = build_timelines(resources, report)
    first, second = timeline.visits
    assert first.diagnoses == []                     # visit with no diagnoses at all
    assert _codes(second.diagnoses) == [(cs.ICD10CM, "R50.9")]
    assert second.start == datetime(2023, 3, 3, 11, 59, 59, 999999, tzinfo=UTC)
    assert timeline.sex == "other" and timeline.birth_date is None and second.age is None


def test_directory_of_bundle_files():
    cohort = load_cohort(DATA / "bundles", progress=False)
    assert [t.patient_id for t in cohort.timelines] == sorted(
        ["8c5a3f0e-2b1d-4c6e-9f7a-1d2e3f4a5b6c", "19283", "c.42"])
    assert cohort.visit_count == 5 and len(cohort.report.files) == 3


def test_prefetch_with_resources_bundles_and_nulls():
    report = IngestReport()
    resources = resources_from_prefetch(_load_json("prefetch.json"), report=report)
    assert sorted((r["resourceType"], r["id"]) for r in resources) == [
        ("Condition", "dx1"), ("Condition", "dx2"), ("Encounter", "89284"), ("Patient", "smart-1288992")]
    assert report.skipped["prefetch value is null"] == 1
    assert report.skipped["duplicate resource in prefetch"] == 1
    (timeline,) = build_timelines(resources, report)
    (visit,) = timeline.visits
    assert _codes(visit.diagnoses) == [(cs.ICD10CM, "O24.419")]
    assert _codes(visit.unknown_codes) == [(cs.SNOMED, "77386006")]   # attached by date, not ICD
    assert report.unknown_codes[cs.SNOMED] == 1
    assert visit.start == datetime(2024, 5, 1, 21, 12, 44, 400000, tzinfo=UTC)


def test_prefetch_without_report_raises_on_a_malformed_resource():
    prefetch = {"patient": {"resourceType": "Patient", "id": "p", "birthDate": "1985-13-01"}}
    with pytest.raises(FhirInputError) as err:
        resources_from_prefetch(prefetch)
    assert err.value.field == "birthDate" and err.value.source == "prefetch.patient"
    assert resources_from_prefetch({"patient": None, "meds": None}) == []


# ---------------------------------------------------------------------------
# Malformed resources
# ---------------------------------------------------------------------------

BAD_ENCOUNTER = {"resourceType": "Encounter", "id": "abc", "status": "finished",
                 "class": {"code": "AMB"}, "period": {"start": "not-a-date"}}


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_malformed_resource_error_names_resource_and_field(mode):
    with pytest.raises(FhirInputError) as err:
        validate_resource(BAD_ENCOUNTER, mode)
    exc = err.value
    assert (exc.resource_type, exc.resource_id, exc.field) == ("Encounter", "abc", "period.start")
    assert "Encounter/abc field period.start: 'not-a-date' is not a FHIR dateTime" in str(exc)


def test_validate_none_only_needs_a_resource_type():
    assert validate_resource(BAD_ENCOUNTER, "none") is BAD_ENCOUNTER
    with pytest.raises(FhirInputError, match="missing resourceType"):
        validate_resource({"id": "x"}, "none")
    with pytest.raises(ValueError):
        validate_resource(BAD_ENCOUNTER, "thorough")


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_malformed_file_reports_each_bad_line_and_yields_the_good(mode):
    report = IngestReport()
    resources = list(iter_resources(DATA / "malformed.ndjson", validate=mode, report=report))
    assert {r["id"] for r in resources} == {"enc-ok", "p1"}
    by_line = {int(p.source.rsplit(":", 1)[1]): p for p in report.problems}
    assert sorted(by_line) == [1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13]
    assert by_line[1].field == "period.start"
    assert by_line[2].field == "resourceType" and "missing resourceType" in by_line[2].message
    assert by_line[3].field == "code" and "expected an object" in by_line[3].message
    assert by_line[5].field == "subject"
    assert by_line[6].field == "id"
    assert by_line[7].field == "performedDateTime"
    assert by_line[8].field == "content[0].attachment.data"
    assert by_line[10].field == "diagnosis[0].rank"
    assert by_line[12].field == "resourceType" and "Wibble" in by_line[12].message
    assert "invalid JSON" in by_line[13].message
    assert report.skipped["invalid JSON"] == 1 and report.skipped["invalid resource"] == 10


def test_strict_reading_without_a_report_raises_with_file_and_line():
    with pytest.raises(FhirInputError) as err:
        list(iter_resources(DATA / "malformed.ndjson"))
    assert str(err.value).startswith(f"{DATA / 'malformed.ndjson'}:1: Encounter/abc field period.start")


def test_full_validation_sample_in_fast_mode_reports_but_keeps(tmp_path):
    path = tmp_path / "Patient.ndjson"
    # "photo" is not read by the timeline, so only full validation sees it is malformed.
    path.write_text("".join(json.dumps({"resourceType": "Patient", "id": f"p{i}", "gender": "female",
                                        **({"photo": "not-an-array"} if i == 3 else {})}) + "\n"
                            for i in range(6)))
    report = IngestReport()
    assert len(list(iter_resources(path, report=report, full_sample=1))) == 6
    assert report.validation["full-sample"] == 6
    (problem,) = report.problems
    assert problem.kept and problem.field == "photo" and problem.source == f"{path}:4"
    sampled = IngestReport()
    list(iter_resources(path, report=sampled, full_sample=4))
    assert sampled.validation["full-sample"] == 1 and sampled.problem_count == 1


# ---------------------------------------------------------------------------
# Timelines from the bulk export
# ---------------------------------------------------------------------------

def test_visits_ordered_and_sub_encounters_merged(bulk):
    patient = bulk.patient("pat-0001")
    assert [v.encounter_id for v in patient.visits] == ["enc-a1", "enc-a2", "enc-a3"]
    stay = patient.visits[1]
    assert stay.merged_encounters == ["enc-a2-icu", "enc-a2-icu-x"]
    assert stay.end == datetime(2019, 6, 14, 11, 30, 0, 500000, tzinfo=UTC)   # the last part's end
    assert _codes(stay.procedures) == [(cs.ICD10PCS, "5A1955Z")]             # coded in the ICU part
    assert bulk.report.skipped["Encounter with status cancelled"] == 1
    assert bulk.report.skipped["Procedure with status not-done"] == 1


def test_chronic_condition_recited_at_three_visits_lands_in_each(bulk):
    visits = bulk.patient("pat-0001").visits
    assert all(Code(cs.ICD10CM, "I10") in v.diagnoses for v in visits)
    stay = visits[1]
    # Ranked Encounter.diagnosis first (principal I50.23), then by date.
    assert _codes(stay.diagnoses) == [(cs.ICD10CM, "I50.23"), (cs.ICD10CM, "I10"),
                                      (cs.ICD10CM, "E11.9"), (cs.ICD10CM, "J18.9"),
                                      (cs.ICD10CM, "N39.0")]
    assert bulk.report.skipped["Encounter.diagnosis citing a Condition not in the data"] == 1
    assert bulk.report.skipped["Condition refuted"] == 1
    assert bulk.report.skipped["Condition entered-in-error"] == 1


def test_conditions_without_encounter_attached_by_date(bulk):
    stay = _visit(bulk, "pat-0001", "enc-a2")
    assert Code(cs.ICD10CM, "J18.9") in stay.diagnoses     # recorded during the stay (+02:00)
    assert Code(cs.ICD10CM, "N39.0") in stay.diagnoses     # two days after discharge
    all_dx = {c for t in bulk.timelines for v in t.visits for c in v.diagnoses}
    assert Code(cs.ICD10CM, "S52.501A") not in all_dx       # years before any visit
    assert bulk.report.skipped["Condition not attached to a visit"] == 1


def _encounter(eid, start, end=None, status="finished"):
    period = {"start": start, **({"end": end} if end else {})}
    return {"resourceType": "Encounter", "id": eid, "status": status, "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p"}, "period": period}


def _condition(cid, code, recorded):
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": cs.ICD10CM, "code": code}]}, "recordedDate": recorded}


def test_attaching_by_date_picks_the_visit_in_progress_at_that_time():
    resources = [
        {"resourceType": "Patient", "id": "p"},
        _encounter("morning", "2022-01-10T08:00:00Z", "2022-01-10T09:00:00Z"),
        _encounter("afternoon", "2022-01-10T14:00:00Z", "2022-01-10T15:00:00Z"),
        _encounter("stay", "2022-03-01T10:00:00Z", status="in-progress"),
        _encounter("old", "2021-06-01T10:00:00Z"),
        _condition("c1", "I10", "2022-01-10T08:30:00Z"),
        _condition("c2", "E11.9", "2022-01-10T14:30:00Z"),
        _condition("c3", "J18.9", "2022-03-12"),       # day 11 of a stay still in progress
        _condition("c4", "N39.0", "2021-06-12"),       # 11 days after a finished visit
    ]
    report = IngestReport()
    (timeline,) = build_timelines(resources, report)
    dx = {v.encounter_id: [c.code for c in v.diagnoses] for v in timeline.visits}
    assert dx == {"old": [], "morning": ["I10"], "afternoon": ["E11.9"], "stay": ["J18.9"]}
    assert report.skipped["Condition not attached to a visit"] == 1


def test_codes_under_wrong_or_odd_system_urls_are_corrected(bulk):
    first = _visit(bulk, "pat-0001", "enc-a1")
    assert Code(cs.ICD10CM, "E78.5") in first.diagnoses    # ICD-10 code under the ICD-9 URL
    assert Code(cs.ICD10CM, "E11.9") in first.diagnoses    # OID system, undotted
    third = _visit(bulk, "pat-0001", "enc-a3")
    assert Code(cs.ICD10CM, "K21.9") in third.diagnoses
    assert _codes(third.reason_codes) == [(cs.ICD10CM, "R07.9")]   # lower-case, undotted
    er = _visit(bulk, "MRN.77", "E-20200105-0300")
    assert Code(cs.ICD9CM, "428.0") in er.diagnoses
    assert Code(cs.ICD9CM, "E880.9") in er.diagnoses
    assert _codes(er.procedures) == [(cs.ICD9CM_PROC, "87.03")]
    assert bulk.report.events["ICD codes under a wrong or unrecognised system URL, corrected"] >= 1


def test_unknown_codes_are_counted_by_system_and_kept_on_the_visit(bulk):
    unknown = bulk.report.unknown_codes
    assert unknown[cs.SNOMED] == 2                  # c-snomed and enc-a3's chest-pain reason
    assert unknown["http://hospital.example.org/codes/dx"] == 1
    assert unknown[cs.CPT] == 0                     # procedures are an open vocabulary: kept, not unknown
    assert unknown["http://hospital.example.org/formulary"] == 1       # the unmapped drug
    first = _visit(bulk, "pat-0001", "enc-a1")
    assert (cs.SNOMED, "267036007") in _codes(first.unknown_codes)
    assert (cs.CPT, "93000") in _codes(first.procedures)              # procedure attached by date
    assert next(p for p in first.procedures if p.code == "93000").display == "Electrocardiogram, complete"
    # SNOMED beside an ICD coding (c-htn) is a translation, not an unknown code.
    assert (cs.SNOMED, "38341003") not in {(c.system, c.code) for t in bulk.timelines
                                           for v in t.visits for c in v.unknown_codes}


def test_timestamps_with_offsets_and_microseconds_are_utc(bulk):
    visits = bulk.patient("pat-0001").visits
    assert visits[0].start == datetime(2019, 3, 1, 14, 15, tzinfo=UTC)
    assert visits[1].start == datetime(2019, 6, 10, 20, 30, 0, 123456, tzinfo=UTC)
    assert visits[2].start == datetime(2019, 9, 20, tzinfo=UTC) and visits[2].end is None
    assert all(v.start.tzinfo is UTC for t in bulk.timelines for v in t.visits)
    assert parse_fhir_datetime("2020-02-29T23:59:60.1234567-14:00") == \
        datetime(2020, 3, 1, 13, 59, 59, 123456, tzinfo=UTC)
    assert parse_fhir_datetime("2020-02-30") is None and parse_fhir_datetime(None) is None


def test_medications_by_code_reference_contained_and_name(bulk):
    first, stay, third = bulk.patient("pat-0001").visits
    assert first.medications == ["6809"]                         # RxNorm metformin
    assert stay.medications == sorted(["29046", "11289"])        # Medication/…, contained "Warfarin"
    assert third.medications == ["83367"]                        # text "atorvastatin", by date
    assert _codes(third.unmapped_medications) == [("http://hospital.example.org/formulary", "F-77001")]
    assert bulk.report.skipped["MedicationRequest with status cancelled"] == 1


def test_combination_product_gives_every_ingredient():
    resources = [
        {"resourceType": "Patient", "id": "p"},
        _encounter("e", "2022-01-10T08:00:00Z", "2022-01-10T09:00:00Z"),
        {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p"}, "encounter": {"reference": "Encounter/e"},
         "medicationCodeableConcept": {"coding": [{"system": cs.RXNORM, "code": "562251",
                                                   "display": "Amoxicillin / Clavulanate"}]}},
    ]
    (timeline,) = build_timelines(resources)
    assert timeline.visits[0].medications == sorted(["723", "48203"])


def test_notes_from_base64_text_and_html(bulk):
    first, stay, third = bulk.patient("pat-0001").visits
    assert stay.notes[0].startswith("DISCHARGE SUMMARY") and "I50.23" in stay.notes[0]
    (html_note,) = first.notes
    assert "BP 150/95 & rising." in html_note and "Start lisinopril." in html_note
    assert "<" not in html_note and "alert" not in html_note and "color" not in html_note
    assert third.notes == ["Follow-up: chest pain resolved. Reflux (K21.9) suspected."]
    assert bulk.report.skipped["note attachment by URL (not fetched)"] == 1


def test_non_uuid_ids_sex_and_age(bulk):
    ids = [t.patient_id for t in bulk.timelines]
    assert ids == sorted(["pat-0001", "MRN.77", "3"])
    mrn = bulk.patient("MRN.77")
    assert mrn.sex == "male" and mrn.birth_date == date(1948, 7, 1)
    assert mrn.visits[0].age == pytest.approx(71.51, abs=0.01)
    assert bulk.patient("3").visits == []
    assert bulk.patient("pat-0001").visits[0].age == pytest.approx(68.88, abs=0.01)
    assert reference_id("urn:uuid:abc") == "abc"
    assert reference_id({"reference": "Group/g1"}, "Patient") is None


def test_validation_modes_build_the_same_timelines():
    built = {mode: load_cohort(DATA / "bulk", validate=mode, progress=False).timelines
             for mode in ("none", "fast", "full")}
    assert built["none"] == built["fast"] == built["full"]


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

def test_vocabulary_round_trip_and_oov():
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "b"], ["rare"]], min_count=1)
    assert vocab.tokens == [OOV_TOKEN, "b", "a", "c", "rare"] and len(vocab) == 5
    assert vocab.index("b") == 1 and vocab.index("never-seen") == 0
    assert vocab.encode(["a", "zzz", "c"]) == [2, 0, 3]
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and again.fingerprint == vocab.fingerprint
    assert Vocabulary.build([["b", "a", "b"], ["c", "b"]], min_count=2).tokens == [OOV_TOKEN, "b"]
    tampered = vocab.to_dict()
    tampered["tokens"] = tampered["tokens"][:-1]
    with pytest.raises(ValueError, match="fingerprint"):
        Vocabulary.from_dict(tampered)


def test_split_is_deterministic_and_proportioned():
    ids = [f"patient-{i}" for i in range(6000)]
    splits = split_patients(ids, seed=11)
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    assert split_patients(shuffled, seed=11) == splits
    counts = {name: sum(1 for s in splits.values() if s == name) / len(ids)
              for name in ("train", "validation", "test")}
    assert counts["train"] == pytest.approx(4 / 6, abs=0.02)
    assert counts["validation"] == pytest.approx(1 / 6, abs=0.02)
    assert counts["test"] == pytest.approx(1 / 6, abs=0.02)
    assert split_patients(ids, seed=12) != splits


def test_multi_hot_and_batches():
    tensor = multi_hot([[1, 3], [], [0]], 4)
    assert tensor.dtype == torch.float32
    assert tensor.tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    items = list(range(10))
    assert [len(b) for b in batches(items, 4)] == [4, 4, 2]
    once = list(batches(items, 3, shuffle=True, seed=5))
    assert once == list(batches(items, 3, shuffle=True, seed=5))
    assert sorted(x for b in once for x in b) == items and once != list(batches(items, 3))


def test_note_tokens_keep_icd_codes():
    tokens = tokenize_note("Pt w/ CHF (I50.23); h/o 428.0, V45.81 & E880.9 fall. BP 150/95")
    for expected in ("pt", "chf", "i50.23", "428.0", "v45.81", "e880.9", "fall", "150", "95"):
        assert expected in tokens
    assert tokenize_note(None) == []


def test_visit_tokens(bulk):
    stay = _visit(bulk, "pat-0001", "enc-a2")
    tokens = visit_tokens(stay)
    assert tokens["diagnoses"][0] == "icd10:I50.23"
    assert tokens["procedures"] == ["pcs:5A1955Z"]
    assert tokens["medications"] == stay.medications
    assert "i50.23" in note_tokens(stay) and "pneumonia" in note_tokens(stay)
    er = _visit(bulk, "MRN.77", "E-20200105-0300")
    assert visit_tokens(er)["procedures"] == ["icd9proc:87.03"]
    assert "icd9:428.0" in visit_tokens(er)["diagnoses"]
    assert parse_token("icd10:E11.65") == Code(cs.ICD10CM, "E11.65")
    assert code_token(Code(cs.ICD9CM_PROC, "45.13"), "procedure") == "icd9proc:45.13"
