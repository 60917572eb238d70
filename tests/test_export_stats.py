"""`synth --stats` on an EHR-shaped export: only the top-level NDJSON files, episode and vocabulary
figures, coded-pair Jaccards, unknown codes by system; the service's unknown-code metric by system."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_assist.adapter.timeline import load_cohort
from fhir_assist.cds import create_app
from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.cds.metrics import system_label
from fhir_assist.cli import main as cli_main
from fhir_assist.config import Settings
from fhir_assist.store import MemoryStore
from mappings import codesystems as cs

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOCAL_DX = "http://hospital.example.org/fhir/CodeSystem/problems"


def _encounter(eid, cls, start, end=None, part_of=None, reason=None, status="finished"):
    resource = {"resourceType": "Encounter", "id": eid, "status": status, "class": {"system": ACT, "code": cls},
                "subject": {"reference": "Patient/p1"}, "period": {"start": start, **({"end": end} if end else {})}}
    if part_of:
        resource["partOf"] = {"reference": f"Encounter/{part_of}"}
    if reason:
        resource["reasonCode"] = [{"coding": [{"system": cs.ICD10CM, "code": reason}]}]
    return resource


def _condition(cid, system, code, eid):
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": system, "code": code}]}, "encounter": {"reference": f"Encounter/{eid}"}}


def _export(directory):
    resources = {
        "Patient": [{"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1955-01-01"}],
        "Encounter": [
            _encounter("chk", "AMB", "2024-01-05T09:00:00Z", "2024-01-05T09:30:00Z", reason="Z00.00"),
            _encounter("fu1", "AMB", "2024-02-05T09:00:00Z", "2024-02-05T09:30:00Z"),
            _encounter("fu2", "VR", "2024-03-05T09:00:00Z", "2024-03-05T09:30:00Z"),
            _encounter("ed", "EMER", "2024-04-01T08:00:00Z", "2024-04-01T12:00:00Z"),
            _encounter("adm", "IMP", "2024-04-01T12:30:00Z", None, part_of="ed", status="in-progress"),
        ],
        "Condition": [_condition("c1", cs.ICD10CM, "E11.9", "fu1"), _condition("c2", cs.ICD10CM, "E11.9", "fu2"),
                      _condition("c3", cs.ICD10CM, "I10", "fu2"), _condition("c4", cs.SNOMED, "44054006", "adm"),
                      _condition("c5", LOCAL_DX, "DM-2", "adm")],
        "Procedure": [{"resourceType": "Procedure", "id": "x1", "status": "completed",
                       "code": {"coding": [{"system": cs.CPT, "code": "99396"}]},
                       "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/chk"}}],
    }
    directory.mkdir()
    for rtype, items in resources.items():
        (directory / f"{rtype}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items))
    # Unrelated JSON beside the NDJSON: a statistics file, and a folder of Bundles repeating a resource.
    (directory / "stats.json").write_text(json.dumps({"patients": 1000}))
    (directory / "bundles").mkdir()
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in resources["Encounter"] + resources["Patient"]]}
    (directory / "bundles" / "p1.json").write_text(json.dumps(bundle))
    return directory


def test_stats_reads_the_top_level_ndjson_only_and_reports_episodes(tmp_path, capsys):
    export = _export(tmp_path / "export")
    assert cli_main(["synth", "--stats", str(export), "--json", "--quiet"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["patients"] == 1 and figures["encounters"] == 5
    assert figures["visits"] == 4                          # the admission joins its ED visit
    assert figures["visits_by_class"] == {"AMB": 2, "VR": 1, "IMP": 1}
    assert figures["open_visits"] == 1 and figures["reason_only_visits"] == 1
    assert figures["visits_with_procedures"] == 1 and figures["procedures_mapped"] == 1
    assert figures["medications_mapped"] == 0
    assert figures["unknown_codes_by_system"] == {LOCAL_DX: 1, cs.SNOMED: 1}
    # Consecutive pairs: chk→fu1 (empty→E11.9), fu1→fu2 (1/2), fu2→adm (coded→empty): only one coded pair.
    assert figures["dx_jaccard_coded_pairs"] == pytest.approx(0.5)
    assert figures["dx_jaccard_consecutive"] == pytest.approx((0 + 0.5 + 0) / 3, abs=1e-4)
    assert figures["med_jaccard_coded_pairs"] is None
    cohort = load_cohort(export, progress=False)
    assert sorted(Path(f).name for f in cohort.report.files) == [
        "Condition.ndjson", "Encounter.ndjson", "Patient.ndjson", "Procedure.ndjson"]
    assert cohort.report.events["files beside the export's top-level files not read"] == 2


def test_bundles_are_read_when_there_is_no_ndjson(tmp_path, capsys):
    export = _export(tmp_path / "export")
    for path in export.glob("*.ndjson"):
        path.unlink()
    (export / "stats.json").unlink()
    assert cli_main(["synth", "--stats", str(export), "--json", "--quiet"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["encounters"] == 5 and figures["visits"] == 4


def test_unknown_code_metric_is_labelled_by_known_system_only(demo_models, hook_cohort):
    assert system_label(cs.SNOMED) == "snomed" and system_label("urn:oid:2.16.840.1.113883.6.96") == "snomed"
    assert system_label("http://any.example.org/x") == "other" and system_label("(text only)") == "text-only"
    by_patient, usable = hook_cohort
    resources = copy.deepcopy(by_patient[usable[0]])
    odd = [r for r in resources if r["resourceType"] == "Condition"][:2]
    odd[0]["code"] = {"coding": [{"system": cs.SNOMED, "code": "44054006"}]}
    odd[1]["code"] = {"coding": [{"system": "http://sender-42.example.org/codes", "code": "X1"}]}
    app = create_app(Settings(no_auth=True, evidence=False), store=MemoryStore(), models=demo_models)
    client = app.test_client()
    body = build_request(BY_ID["coding-suggestions-patient-view"], resources, usable[0])
    response = client.post("/cds-services/coding-suggestions-patient-view", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'fhir_assist_unknown_codes_total{system="snomed"}' in metrics
    assert 'fhir_assist_unknown_codes_total{system="other"}' in metrics
    assert "sender-42" not in metrics
