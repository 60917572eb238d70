"""Synthetic cohort: determinism, FHIR validity, calibration, statistics on foreign cohorts, CLI."""
from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from fhir_assist.adapter.timeline import load_cohort
from fhir_assist.cli import main as cli_main
from fhir_assist.synth import clinical, generate, knowledge, stats
from mappings import codesystems, icd

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.ndjson"))}


def _lines(directory: Path, rtype: str) -> list[dict]:
    with open(directory / f"{rtype}.ndjson", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def cohort300(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth300")
    summary = generate.generate_cohort(300, 11, out, progress=False)
    return out, summary


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate.generate_cohort(40, 3, a, progress=False)
    generate.generate_cohort(40, 3, b, progress=False)
    generate.generate_cohort(40, 4, c, progress=False)
    assert set(_digest(a)) == {f"{t}.ndjson" for t in generate.RESOURCE_TYPES}
    assert _digest(a) == _digest(b)
    assert _digest(a)["Condition.ndjson"] != _digest(c)["Condition.ndjson"]
    assert not list(a.glob(".*partial")), "temporary files must not be left behind"


def test_first_patients_do_not_depend_on_cohort_size(tmp_path):
    small, large = tmp_path / "small", tmp_path / "large"
    generate.generate_cohort(5, 9, small, progress=False)
    generate.generate_cohort(12, 9, large, progress=False)
    assert _lines(small, "Patient") == _lines(large, "Patient")[:5]
    small_encounters = _lines(small, "Encounter")
    assert small_encounters == _lines(large, "Encounter")[:len(small_encounters)]


# ---------------------------------------------------------------------------
# Tables and FHIR validity
# ---------------------------------------------------------------------------
def test_clinical_tables_use_only_codes_mappings_know():
    k = knowledge.load()
    icd_or_procedure = [d for d in k.dropped if d[0] != "rxnorm"]
    assert icd_or_procedure == [], icd_or_procedure
    # Ingredient names the RxNorm table lacks are left out, never written; almost all must resolve.
    n_names = sum(len(knowledge.parse_drug_weights(text)) for text in clinical.DRUG_CLASSES.values())
    missing = [d for d in k.dropped if d[0] == "rxnorm"]
    assert len(missing) <= 0.1 * n_names, missing
    from mappings import rxnorm
    known = rxnorm.ingredients()
    for rxcui in k.drug_names:
        assert rxcui in known or rxnorm.ingredient_for(rxcui) == rxcui


def test_every_resource_type_validates_against_fhir_r4(cohort300):
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.patient import Patient
    from fhir.resources.R4B.procedure import Procedure

    out, _ = cohort300
    models = {"Patient": Patient, "Encounter": Encounter, "Condition": Condition, "Procedure": Procedure,
              "MedicationRequest": MedicationRequest, "DocumentReference": DocumentReference}
    for rtype, model in models.items():
        resources = _lines(out, rtype)
        assert resources, rtype
        step = max(1, len(resources) // 60)
        for resource in resources[::step]:
            model.model_validate(resource)
        ids = [r["id"] for r in resources]
        assert len(ids) == len(set(ids)), f"duplicate {rtype} ids"
        assert all(re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", i) for i in ids)


def test_resources_carry_the_codes_and_links_the_contract_names(cohort300):
    out, _ = cohort300
    encounters = {e["id"]: e for e in _lines(out, "Encounter")}
    classes = {e["class"]["code"] for e in encounters.values()}
    assert "IMP" in classes and classes <= {"IMP", "AMB", "EMER"}
    assert all(e["status"] == "finished" for e in encounters.values())
    assert all(re.search(r"[+-]\d\d:\d\d$", e["period"]["start"]) for e in encounters.values())
    h10 = icd.icd10cm()
    for condition in _lines(out, "Condition")[::7]:
        coding = condition["code"]["coding"][0]
        assert coding["system"] == ICD10 and h10.is_billable(coding["code"]), coding
        assert condition["encounter"]["reference"].removeprefix("Encounter/") in encounters
        assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
        assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    for request in _lines(out, "MedicationRequest")[::11]:
        coding = request["medicationCodeableConcept"]["coding"][0]
        assert coding["system"] == RXNORM and coding["code"].isdigit()
        assert request["authoredOn"] and request["status"] in {"completed", "active"}
    for procedure in _lines(out, "Procedure"):
        assert procedure["code"]["coding"][0]["system"] == codesystems.ICD10PCS
    for document in _lines(out, "DocumentReference")[::5]:
        assert document["type"]["coding"][0]["code"] == "18842-5"
        assert document["context"]["encounter"][0]["reference"].removeprefix("Encounter/") in encounters
        text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode("utf-8")
        assert 80 <= len(text.split()) <= 250, text


def test_notes_use_synonyms_and_negations_without_contradicting_the_codes(cohort300):
    out, _ = cohort300
    pneumonia_stays = {c["encounter"]["reference"] for c in _lines(out, "Condition")
                       if c["code"]["coding"][0]["code"].startswith(("J18", "J15", "J12", "J13", "J69"))}
    negated, abbreviated = 0, 0
    for document in _lines(out, "DocumentReference"):
        text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode("utf-8")
        encounter = document["context"]["encounter"][0]["reference"]
        if "no evidence of pneumonia" in text:
            negated += 1
            assert encounter not in pneumonia_stays, text
        abbreviated += bool(re.search(r"\b(CHF|AFib|DM2|HTN|COPD|CKD|UTI|PNA)\b", text))
    assert negated > 0 and abbreviated > 50


def test_drug_interactions_occur_in_some_but_not_most_visits(cohort300):
    _, summary = cohort300
    assert 0.03 < summary["ddi_visit_rate"] < 0.5, summary


def test_icd9_and_mixed_cohorts(tmp_path):
    generate.generate_cohort(30, 5, tmp_path / "nine", progress=False, icd_version="icd9cm")
    h9 = icd.icd9cm()
    conditions = _lines(tmp_path / "nine", "Condition")
    assert conditions and all(c["code"]["coding"][0]["system"] == ICD9 for c in conditions)
    assert all(h9.is_valid(c["code"]["coding"][0]["code"]) for c in conditions)
    procedures = _lines(tmp_path / "nine", "Procedure")
    assert all(p["code"]["coding"][0]["system"] == codesystems.ICD9CM_PROC for p in procedures)

    generate.generate_cohort(60, 5, tmp_path / "mixed", progress=False, icd_version="mixed")
    periods = {e["id"]: e["period"]["end"][:10] for e in _lines(tmp_path / "mixed", "Encounter")}
    systems = set()
    for c in _lines(tmp_path / "mixed", "Condition"):
        system = c["code"]["coding"][0]["system"]
        systems.add(system)
        end = periods[c["encounter"]["reference"].removeprefix("Encounter/")]
        assert (system == ICD9) == (end < "2015-10-01")
    assert systems == {ICD9, ICD10}


# ---------------------------------------------------------------------------
# Calibration (read back through the adapter, as any cohort would be)
# ---------------------------------------------------------------------------
def test_cohort_statistics_match_mimic_targets(cohort300):
    out, _ = cohort300
    cohort = load_cohort(out, progress=False)
    figures = stats.cohort_stats(cohort.timelines)
    assert figures["patients"] == 300
    assert 2.0 <= figures["visits_per_patient"] <= 2.8, figures
    assert 0.12 <= figures["dx_jaccard_consecutive"] <= 0.3, figures
    assert 0.4 <= figures["med_jaccard_consecutive"] <= 0.6, figures
    assert 7 <= figures["billing_codes_per_stay"] <= 11, figures
    assert 30 <= figures["codes_all_levels_per_stay"] <= 50, figures
    assert figures["unknown_codes"] == 0, cohort.report.summary()
    assert figures["distinct_dx_codes"] > 600 and figures["distinct_medications"] > 100
    profile = stats.code_frequency_profile(cohort.timelines)
    assert 0.6 <= profile["zipf_exponent"] <= 2.5, profile     # long-tailed, power-law-like
    assert profile["singletons"] > 0.25 * figures["distinct_dx_codes"]
    ages = [v.age for t in cohort.timelines for v in t.visits[:1]]
    assert min(ages) >= 18 and max(ages) < 100 and sum(ages) / len(ages) > 60
    sexes = {t.sex for t in cohort.timelines}
    assert sexes == {"male", "female"}


# ---------------------------------------------------------------------------
# Statistics of a cohort from another source (Bundles, no Encounter links on some resources)
# ---------------------------------------------------------------------------
def _entry(resource):
    return {"fullUrl": f"urn:uuid:{resource['resourceType']}-{resource['id']}", "resource": resource}


def _encounter(eid, patient, start, end):
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/{patient}"}, "period": {"start": start, "end": end}}


def _condition(cid, patient, system, code, encounter=None, recorded=None):
    resource = {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{patient}"},
                "code": {"coding": [{"system": system, "code": code}]}}
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    if recorded:
        resource["recordedDate"] = recorded
    return resource


def _medication(mid, patient, rxcui, encounter=None, authored=None):
    resource = {"resourceType": "MedicationRequest", "id": mid, "status": "completed", "intent": "order",
                "subject": {"reference": f"Patient/{patient}"},
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui}]}}
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    if authored:
        resource["authoredOn"] = authored
    return resource


METFORMIN, LISINOPRIL, ATORVASTATIN = "6809", "29046", "83367"


@pytest.fixture(params=["bundles", "ndjson"])
def foreign_bundles(tmp_path, request):
    a = [
        {"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1950-02-01"},
        _encounter("a1", "a", "2020-01-01T10:00:00Z", "2020-01-04T10:00:00Z"),
        _encounter("a2", "a", "2020-05-01T10:00:00Z", "2020-05-06T10:00:00Z"),
        _encounter("a3", "a", "2021-01-10T10:00:00Z", "2021-01-12T10:00:00Z"),
        _condition("a1c1", "a", ICD10, "E11.9", encounter="a1"),
        _condition("a1c2", "a", ICD10, "I10", encounter="a1"),
        _condition("a2c1", "a", ICD10, "E11.9", encounter="a2"),
        _condition("a2c2", "a", ICD10, "J18.9", recorded="2020-05-03T09:00:00Z"),    # attached by date
        _condition("a3c1", "a", ICD10, "I10", encounter="a3"),
        _condition("a3c2", "a", ICD10, "N17.9", encounter="a3"),
        _medication("a1m1", "a", METFORMIN, encounter="a1"),
        _medication("a1m2", "a", LISINOPRIL, encounter="a1"),
        _medication("a2m1", "a", METFORMIN, authored="2020-05-02T08:00:00Z"),         # attached by date
        _medication("a3m1", "a", METFORMIN, encounter="a3"),
        _medication("a3m2", "a", LISINOPRIL, encounter="a3"),
        _medication("a3m3", "a", ATORVASTATIN, encounter="a3"),
    ]
    b = [
        {"resourceType": "Patient", "id": "b", "gender": "male", "birthDate": "1941-07-30"},
        _encounter("b1", "b", "2012-03-01T00:00:00-05:00", "2012-03-03T00:00:00-05:00"),
        _encounter("b2", "b", "2013-03-01T00:00:00-05:00", "2013-03-05T00:00:00-05:00"),
        _condition("b1c1", "b", ICD10, "I50.9", encounter="b1"),
        _condition("b2c1", "b", ICD10, "I50.9", encounter="b2"),
        _condition("b2c2", "b", ICD9, "428.0", encounter="b2"),
        _condition("b2c3", "b", ICD10, "ZZZ.99", encounter="b2"),                     # unknown code
        _medication("b1m1", "b", LISINOPRIL, encounter="b1"),
        _medication("b2m1", "b", LISINOPRIL, encounter="b2"),
    ]
    if request.param == "bundles":
        (tmp_path / "patient-a.json").write_text(json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [_entry(r) for r in a]}))
        (tmp_path / "patient-b.json").write_text(json.dumps(
            {"resourceType": "Bundle", "type": "searchset", "entry": [_entry(r) for r in b]}))
    else:  # a Bulk Data export: one NDJSON file per resource type, in no particular order
        by_type: dict[str, list[str]] = {}
        for resource in reversed(a + b):
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
        for rtype, lines in by_type.items():
            (tmp_path / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_statistics_of_a_foreign_bundle_cohort(foreign_bundles):
    figures = stats.cohort_stats(load_cohort(foreign_bundles, progress=False).timelines)
    assert figures["patients"] == 2
    assert figures["visits_per_patient"] == 2.5
    # a1→a2: {E11.9} of {E11.9, I10, J18.9}; a2→a3: nothing shared; b1→b2: {I50.9} of {I50.9, 428.0}.
    assert figures["dx_jaccard_consecutive"] == pytest.approx((1 / 3 + 0 + 1 / 2) / 3, abs=1e-4)
    # a1→a2: 1/2; a2→a3: 1/3; b1→b2: 1.
    assert figures["med_jaccard_consecutive"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3, abs=1e-4)
    assert figures["billing_codes_per_stay"] == pytest.approx(9 / 5)
    assert figures["distinct_dx_codes"] == 6
    assert figures["distinct_medications"] == 3
    assert figures["unknown_codes"] == 1
    # E11.9 → chapter, block, E11, E11.9 (4char), E11.9 (billing); I10 → chapter, block, I10, I10 (billing).
    levels = stats.level_profile(load_cohort(foreign_bundles, progress=False).timelines)
    assert figures["codes_all_levels_per_stay"] == pytest.approx(sum(levels.values()), abs=1e-3)


def test_stats_cli_json_keys_and_table(foreign_bundles, capsys):
    assert cli_main(["synth", "--stats", str(foreign_bundles), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed)[:9] == ["patients", "visits_per_patient", "dx_jaccard_consecutive",
                                 "med_jaccard_consecutive", "billing_codes_per_stay", "codes_all_levels_per_stay",
                                 "distinct_dx_codes", "distinct_medications", "unknown_codes"]
    assert set(printed) == set(stats.KEYS) | set(stats.BREAKDOWNS)
    assert cli_main(["synth", "--stats", str(foreign_bundles), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "diagnosis Jaccard" in table and "39.54" in table and "0.500" in table


def test_cli_generates_with_progress_bar_and_reports_user_errors(tmp_path, capsys):
    out = tmp_path / "cohort"
    assert cli_main(["synth", "--patients", "8", "--seed", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 8 patients" in captured.out and "patient" in captured.err   # tqdm bar on stderr
    assert (out / "DocumentReference.ndjson").stat().st_size > 0
    assert cli_main(["synth", "--patients", "8"]) == 2
    assert cli_main(["synth", "--stats", str(tmp_path / "missing")]) == 2
    assert cli_main(["synth", "--patients", "0", "--out", str(out)]) == 2
    assert cli_main(["synth", "--stats", str(out), "--patients", "3"]) == 2
    assert "error" in capsys.readouterr().err


def test_cohort_stats_is_a_pure_function_of_timelines():
    from datetime import datetime

    from fhir_assist.adapter.visits import Code, PatientTimeline, Visit

    def visit(eid, codes, meds):
        return Visit(encounter_id=eid, start=datetime(2020, 1, 1), end=datetime(2020, 1, 2),
                     diagnoses=[Code(ICD10, c) for c in codes], medications=meds)

    one = PatientTimeline("p1", "female", None, [visit("e1", ["I10", "E11.9"], ["6809"]),
                                                 visit("e2", ["I10"], ["6809", "29046"])])
    figures = stats.cohort_stats([one])
    assert figures["dx_jaccard_consecutive"] == 0.5 and figures["med_jaccard_consecutive"] == 0.5
    assert figures["billing_codes_per_stay"] == 1.5
    # I10: chapter, block, I10 (3char), I10 (billing); E11.9 adds chapter, block, E11, E11.9 twice (4char, billing).
    assert figures["codes_all_levels_per_stay"] == (9 + 4) / 2
    empty = stats.cohort_stats([PatientTimeline("p2", None, None, [])])
    assert empty["patients"] == 1 and empty["visits_per_patient"] is None
    assert empty["dx_jaccard_consecutive"] is None and empty["unknown_codes"] == 0
