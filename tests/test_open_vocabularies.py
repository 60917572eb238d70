"""Open vocabularies: procedures of any code system, RxNorm drugs outside the ingredient table,
text-only medications matched by normalised name. Hand-written resources."""
from __future__ import annotations

from fhir_assist.adapter.encode import code_token, parse_token, procedure_tokens
from fhir_assist.adapter.report import IngestReport
from fhir_assist.adapter.timeline import build_timelines
from mappings import codesystems as cs
from mappings import rxnorm

LOCAL = "http://hospital.example.org/fhir/CodeSystem/procedures"
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-05-05"}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
             "subject": {"reference": "Patient/p1"},
             "period": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"}}


def procedure(pid, *codings, text=None):
    code = {"coding": list(codings)}
    if text:
        code["text"] = text
    return {"resourceType": "Procedure", "id": pid, "status": "completed", "code": code,
            "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"}}


def medication(mid, concept):
    return {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
            "medicationCodeableConcept": concept, "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"}}


def only_visit(resources):
    report = IngestReport()
    (timeline,) = build_timelines([PATIENT, ENCOUNTER, *resources], report)
    (visit,) = timeline.visits
    return visit, report


def test_procedures_of_any_system_are_tokens_with_their_display():
    visit, report = only_visit([
        procedure("x1", {"system": cs.CPT, "code": "99214"}, text="office visit"),
        procedure("x2", {"system": "http://snomed.info/sct", "code": "29303009",
                         "display": "Electrocardiographic procedure"}),
        procedure("x3", {"system": "urn:oid:2.16.840.1.113883.6.285", "code": "G0008"}),
        procedure("x4", {"system": LOCAL, "code": "ED-TRIAGE-2", "display": "triage level 2"}),
        # An ICD-10-PCS coding beside a CPT translation: the ICD code, once.
        procedure("x5", {"system": cs.ICD10PCS, "code": "5A1955Z"}, {"system": cs.CPT, "code": "94003"}),
        procedure("x6", text="bedside procedure, no code"),
    ])
    found = {(p.system, p.code): p.display for p in visit.procedures}
    assert found == {(cs.CPT, "99214"): "office visit",
                     (cs.SNOMED, "29303009"): "Electrocardiographic procedure",
                     (cs.HCPCS, "G0008"): None,
                     (LOCAL, "ED-TRIAGE-2"): "triage level 2",
                     (cs.ICD10PCS, "5A1955Z"): None}
    tokens = procedure_tokens(visit)
    assert {"cpt:99214", "snomed:29303009", "hcpcs:G0008", "pcs:5A1955Z", f"{LOCAL}:ED-TRIAGE-2"} == set(tokens)
    assert parse_token(f"{LOCAL}:ED-TRIAGE-2").system == LOCAL
    assert code_token(parse_token("cpt:99214"), "procedure") == "cpt:99214"
    assert report.unknown_codes["(text only)"] == 1 and report.unknown_codes[cs.CPT] == 0
    assert report.events["procedure codes kept as open-vocabulary tokens (cpt)"] == 1


def test_rxnorm_drug_outside_the_ingredient_table_is_its_own_token():
    assert "224905" not in rxnorm.ingredients()         # trastuzumab
    visit, report = only_visit([
        medication("m1", {"coding": [{"system": cs.RXNORM, "code": "224905", "display": "trastuzumab"}]}),
        medication("m2", {"coding": [{"system": cs.RXNORM, "code": "83367", "display": "atorvastatin"}]}),
        medication("m3", {"coding": [{"system": "http://hospital.example.org/formulary", "code": "F-1"}]}),
    ])
    assert visit.medications == ["224905", "83367"]
    assert [(m.system, m.code) for m in visit.unmapped_medications] == [("http://hospital.example.org/formulary",
                                                                          "F-1")]
    assert report.events["RxNorm drugs outside the ingredient table, kept as their own RxCUI"] == 1
    assert report.unknown_codes["http://hospital.example.org/formulary"] == 1


def test_text_only_medications_match_by_normalised_name():
    texts = {"Lipitor (atorvastatin calcium) 20 MG tablet": "83367", "NORVASC": "17767",
             "metformin_hydrochloride 500 mg": "6809", "Metoprolol Tartrate 25 MG Oral Tablet": "6918",
             "Coumadin (Warfarin Sodium) 5 mg": "11289", "insulin_glargine 100 unit/mL": "274783"}
    for i, (text, rxcui) in enumerate(texts.items()):
        visit, _ = only_visit([medication(f"m{i}", {"text": text})])
        assert visit.medications == [rxcui], text
    visit, report = only_visit([medication("mx", {"text": "grandma's herbal tea"})])
    assert not visit.medications and visit.unmapped_medications[0].display == "grandma's herbal tea"
    assert report.unknown_codes["(text only)"] == 1
