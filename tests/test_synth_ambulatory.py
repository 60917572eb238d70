"""The ambulatory synthetic profile: reproducible, valid FHIR R4, shaped like an outpatient EHR export."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

import pytest

from fhir_assist.cli import main as cli_main
from fhir_assist.synth import generate
from mappings import rxnorm
from tests.test_synth import _digest, _lines

CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    out = tmp_path_factory.mktemp("ambulatory")
    summary = generate.generate_cohort(200, 5, out, progress=False, profile="ambulatory", workers=1)
    return out, summary


def test_same_seed_same_files_and_the_default_profile_is_unchanged(tmp_path):
    a, b, c, inpatient = tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "i"
    generate.generate_cohort(30, 3, a, progress=False, profile="ambulatory")
    generate.generate_cohort(30, 3, b, progress=False, profile="ambulatory", workers=1)
    generate.generate_cohort(30, 4, c, progress=False, profile="ambulatory")
    generate.generate_cohort(30, 3, inpatient, progress=False)
    assert _digest(a) == _digest(b)
    assert _digest(a)["Encounter.ndjson"] != _digest(c)["Encounter.ndjson"]
    assert _digest(a)["Encounter.ndjson"] != _digest(inpatient)["Encounter.ndjson"]
    with pytest.raises(ValueError, match="profile"):
        generate.generate_cohort(3, 3, tmp_path / "d", progress=False, profile="outpatient")


def test_every_resource_validates_against_fhir_r4(clinic):
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.procedure import Procedure

    out, _ = clinic
    models = {"Encounter": Encounter, "Condition": Condition, "Procedure": Procedure,
              "MedicationRequest": MedicationRequest, "DocumentReference": DocumentReference}
    for rtype, model in models.items():
        resources = _lines(out, rtype)
        for resource in resources[::max(1, len(resources) // 80)]:
            model.model_validate(resource)
        ids = [r["id"] for r in resources]
        assert len(ids) == len(set(ids)), f"duplicate {rtype} ids"


def test_encounter_mix_and_rate_look_like_an_outpatient_export(clinic):
    out, _ = clinic
    encounters = _lines(out, "Encounter")
    classes = Counter(e["class"]["code"] for e in encounters)
    assert set(classes) == {"AMB", "EMER", "IMP", "VR"}
    assert classes["AMB"] > classes["EMER"] > classes["IMP"] > 0 and classes["VR"] > 0
    starts = defaultdict(list)
    for e in encounters:
        starts[e["subject"]["reference"]].append(datetime.fromisoformat(e["period"]["start"]))
    years = sum(max((max(s) - min(s)).days, 180) / 365.25 for s in starts.values())
    assert 4.5 <= len(encounters) / years <= 7.5
    # Check-ups known only by their reason, vaccinations by Z23 alone.
    reason_only = [e for e in encounters if "reasonCode" in e and "diagnosis" not in e]
    assert len(reason_only) >= 0.08 * len(encounters)
    assert all(e["reasonCode"][0]["coding"][0]["code"] in ("Z00.00", "Z00.01") for e in reason_only)
    conditions = {c["id"]: c for c in _lines(out, "Condition")}
    z23_only = [e for e in encounters if [conditions[d["condition"]["reference"].split("/")[1]]["code"]
                                          ["coding"][0]["code"] for d in e.get("diagnosis", [])] == ["Z23"]]
    assert len(z23_only) >= 0.04 * len(encounters)


def test_chronic_problems_are_cited_from_encounters_not_linked_to_them(clinic):
    out, _ = clinic
    conditions = _lines(out, "Condition")
    assert sum("encounter" not in c for c in conditions) > 0.5 * len(conditions)
    problems = {c["id"] for c in conditions if c["category"][0]["coding"][0]["code"] == "problem-list-item"}
    assert problems and not any("encounter" in c for c in conditions if c["id"] in problems)
    citations = Counter(d["condition"]["reference"].split("/")[1]
                        for e in _lines(out, "Encounter") for d in e.get("diagnosis", []))
    recited = [cid for cid in problems if citations[cid] >= 3]
    assert len(recited) >= 0.5 * len(problems)


def test_problem_list_is_dated_like_an_export_and_rebuilt_as_of_each_visit(clinic):
    from fhir_assist.adapter.timeline import load_cohort

    out, _ = clinic
    problems = [c for c in _lines(out, "Condition") if c["category"][0]["coding"][0]["code"] == "problem-list-item"]
    status = Counter(c["clinicalStatus"]["coding"][0]["code"] for c in problems)
    ended = [c for c in problems if "abatementDateTime" in c]
    assert status["active"] > status["resolved"] + status["inactive"] > 0.05 * len(problems)
    assert len(ended) == status["resolved"] + status["inactive"]
    assert all(c["abatementDateTime"] > c["recordedDate"] for c in ended)
    with_onset = [c for c in problems if "onsetDateTime" in c]
    assert 0.7 * len(problems) < len(with_onset) < len(problems)
    assert any(len(c["onsetDateTime"]) == 10 for c in with_onset)            # some bare dates
    cohort = load_cohort(out, progress=False)
    visits = [v for t in cohort for v in t.visits]
    # the list as of a visit holds most of the chronic codes the visit re-cites; what it
    # misses was written down at that very visit
    chronic_cited = sum(len(set(v.diagnoses) & set(v.problem_list)) for v in visits)
    assert chronic_cited > 0.4 * sum(len(v.diagnoses) for v in visits if v.encounter_class in ("AMB", "VR"))
    assert sum(not v.problem_list for v in visits) < 0.5 * len(visits)
    assert cohort.report.events["problem-list Conditions read"] == len(problems)


def test_part_of_links_ed_to_admission_and_readmission_to_index_stay(clinic):
    out, _ = clinic
    encounters = {e["id"]: e for e in _lines(out, "Encounter")}
    touching = distant = 0
    for e in encounters.values():
        if "partOf" not in e:
            continue
        parent = encounters[e["partOf"]["reference"].split("/")[1]]
        assert e["class"]["code"] == "IMP" and parent["subject"] == e["subject"]
        gap = (datetime.fromisoformat(e["period"]["start"])
               - datetime.fromisoformat(parent["period"]["end"])).total_seconds() / 3600
        if parent["class"]["code"] == "EMER":
            assert 0 <= gap <= 2
            touching += 1
        else:
            assert parent["class"]["code"] == "IMP" and gap >= 3 * 24
            distant += 1
    assert touching >= 10 and distant >= 3
    open_stays = [e for e in encounters.values() if e["status"] == "in-progress"]
    assert open_stays and all("end" not in e["period"] for e in open_stays)


def test_procedure_and_medication_vocabularies_are_open(clinic):
    out, _ = clinic
    systems = Counter(p["code"]["coding"][0]["system"] for p in _lines(out, "Procedure"))
    assert systems[CPT] and systems[SNOMED] and len(systems) >= 4
    for p in _lines(out, "Procedure"):
        coding = p["code"]["coding"][0]
        if coding["system"] == CPT:
            assert "display" not in coding     # no CPT descriptions shipped
    concepts = [m["medicationCodeableConcept"] for m in _lines(out, "MedicationRequest")]
    text_only = [c["text"] for c in concepts if "coding" not in c]
    assert 0.03 * len(concepts) < len(text_only) < 0.3 * len(concepts)
    assert any("(" in t for t in text_only) and any("_" in t for t in text_only)
    curated = rxnorm.ingredients()
    outside = {c["coding"][0]["code"] for c in concepts if "coding" in c} - set(curated)
    assert outside and outside <= {"2019", "6375", "224905", "1721560", "1815", "42372"}


def test_notes_only_for_ed_visits_and_finished_stays(clinic):
    out, _ = clinic
    encounters = {e["id"]: e for e in _lines(out, "Encounter")}
    notes = _lines(out, "DocumentReference")
    assert notes
    for note in notes:
        encounter = encounters[note["context"]["encounter"][0]["reference"].split("/")[1]]
        assert encounter["class"]["code"] in ("EMER", "IMP") and encounter["status"] == "finished"


def test_cli_profile_option(tmp_path, capsys):
    assert cli_main(["synth", "--patients", "4", "--profile", "ambulatory", "--out", str(tmp_path / "c"),
                     "--quiet", "--seed", "2"]) == 0
    assert "ambulatory" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["synth", "--patients", "4", "--profile", "clinic", "--out", str(tmp_path / "d")])
