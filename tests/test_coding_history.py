"""The record before a visit: earlier codes by recency, the visit's context, the
history blocks of the ranker's input and the previous-visit baseline."""
from datetime import datetime, timedelta

import pytest
import torch

from fhir_assist.adapter.visits import Code, Visit
from fhir_assist.tasks.coding import history
from fhir_assist.tasks.coding.encounters import Encounter
from fhir_assist.tasks.coding.models import previous_visit_scores, record_before
from fhir_assist.tasks.coding.spaces import FeatureSpace, LabelSpace
from mappings.codesystems import ICD10CM

DAY = timedelta(days=1)
T0 = datetime(2024, 1, 1)


def _visit(i: int, codes, *, days: float = 0.5, cls: str = "AMB", reasons=(), start=None) -> Visit:
    start = start or T0 + 40 * i * DAY
    return Visit(f"e{i}", start, start + days * DAY, cls, diagnoses=[Code(ICD10CM, c) for c in codes],
                 reason_codes=[Code(ICD10CM, c) for c in reasons])


def test_previous_codes_are_weighted_by_recency():
    visits = [_visit(0, ["E11.9", "I10"]), _visit(1, ["I10"]), _visit(2, ["J45.909"])]
    previous, context = history.visit_history(visits, 2)
    # I10 was coded at the previous visit, E11.9 one visit earlier; the visit's own code is not history
    assert previous == {"icd10:I10": 1.0, "icd10:E11.9": history.RECENCY}
    assert "class|AMB" in context and "stay|0" in context and "gap|30" in context
    first, first_context = history.visit_history(visits, 0)
    assert first == {} and "gap|first" in first_context


def test_context_names_reason_class_and_length_of_stay():
    stay = _visit(1, ["I50.9"], days=8, cls="IMP", reasons=["R06.00"])
    tokens = history.context_tokens(stay, previous=None)
    assert {"class|IMP", "stay|7", "reason|icd10:R06.00"} <= set(tokens)
    assert "stay|unknown" in history.context_tokens(Visit("x", None, None), None)


def test_context_names_the_admitting_service_as_read_from_the_export(tmp_path):
    """Encounter.serviceType: the first coding's system|code, else its text; absent → no token."""
    import json

    from fhir_assist.adapter.timeline import build_timelines, load_cohort

    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-01"}
    stays = [{"resourceType": "Encounter", "id": f"e{i}", "status": "finished", "class": {"code": "IMP"},
              "subject": {"reference": "Patient/p1"},
              "period": {"start": f"2020-0{i + 1}-01T10:00:00Z", "end": f"2020-0{i + 1}-03T10:00:00Z"}}
             for i in range(3)]
    stays[0]["serviceType"] = {"text": " Orthopedics  Service"}
    stays[1]["serviceType"] = {"coding": [{"system": "http://snomed.info/sct", "code": "394579002"}],
                               "text": "Cardiology"}
    (tmp_path / "Encounter.ndjson").write_text("".join(json.dumps(r) + "\n" for r in [patient] + stays))
    expected = [["service|orthopedics service"], ["service|http://snomed.info/sct|394579002"], []]
    for timeline in (build_timelines([patient] + stays)[0], load_cohort(tmp_path, progress=False).timelines[0]):
        tokens = [[t for t in history.context_tokens(v) if t.startswith("service|")] for v in timeline.visits]
        assert tokens == expected


def _encounter(pid, previous, context=(), split="train", codes=("I10",)):
    from fhir_assist.tasks.coding.ontology import code_labels

    labels = {}
    for code in codes:
        for head, token in code_labels(ICD10CM, code).items():
            labels.setdefault(head, set()).add(token)
    return Encounter(pid, pid, split, ["860975"], [], 60.0, "female", labels,
                     previous=dict(previous), context=list(context))


def test_feature_space_history_blocks_and_old_layout():
    encounters = [_encounter("a", {"icd10:I10": 1.0}, ["class|AMB"]),
                  _encounter("b", {"icd10:E11.9": 0.5}, ["class|IMP"])]
    space = FeatureSpace.build(encounters)
    x = space.encode(encounters)
    assert x.shape == (2, space.size)
    kinds = [space.feature_label(int(c))[0] for c in torch.nonzero(x[1]).flatten()]
    assert {"medication", "history", "context", "demographic"} <= set(kinds)
    column = next(int(c) for c in torch.nonzero(x[1]).flatten() if space.feature_label(int(c))[0] == "history")
    assert x[1, column] == pytest.approx(0.5) and space.feature_label(column) == ("history", "icd10:E11.9")
    again = FeatureSpace.from_vocabularies(space.vocabularies())
    assert torch.equal(again.encode(encounters), x)
    # an artifact from before the history blocks keeps its input layout
    old = FeatureSpace.from_vocabularies({k: v for k, v in space.vocabularies().items()
                                          if k in ("medications", "procedures")})
    assert old.previous is None and old.size == len(space.medications) + len(space.procedures) + 4


def test_previous_visit_baseline_ranks_earlier_codes_first_at_every_level():
    train = [_encounter("a", {}, codes=("I10",)), _encounter("b", {}, codes=("E11.9",)),
             _encounter("c", {}, codes=("I10",))]
    labels = LabelSpace.build(train)
    test = [_encounter("d", {"icd10:E11.9": 1.0}, codes=("E11.9",))]
    frequency = torch.full((1, labels.size), 0.3)
    scores = previous_visit_scores(test, labels, frequency)
    for head in ("billing", "3char", "chapter"):
        sl = labels.slices()[head]
        best = labels.token_of(sl.start + int(scores[0, sl].argmax()))[1]
        assert "E11" in best or head == "chapter"
    assert scores.max() <= 1.0 and scores.min() > 0


def test_record_before_reads_the_patient_timeline():
    from fhir_assist.adapter.timeline import PatientTimeline

    visits = [_visit(0, ["E11.9"]), _visit(1, ["I10"])]
    patient = PatientTimeline("p", "female", None, visits)
    previous, _ = record_before(visits[1], patient)
    assert previous == {"icd10:E11.9": 1.0}
    # a visit not in the timeline yet (the encounter being coded): the visits before it count
    new = _visit(2, [])
    assert record_before(new, patient)[0] == {"icd10:I10": 1.0, "icd10:E11.9": history.RECENCY}


def test_problem_list_block_multi_hot_and_absent_without_a_problem_list():
    with_problems = [_encounter("a", {}, ["class|AMB"]), _encounter("b", {}, ["class|AMB"])]
    with_problems[0].problems = ["icd10:E11.9", "icd10:I10"]
    space = FeatureSpace.build(with_problems)
    assert space.problems is not None and "problem-list" in space.vocabularies()
    probe = _encounter("c", {}, ["class|AMB"])
    probe.problems = ["icd10:I10", "icd10:J45.909"]           # J45.909 never seen: left out
    row = space.encode([probe])[0]
    on = [space.feature_label(int(c)) for c in torch.nonzero(row).flatten()]
    assert ("problem", "icd10:I10") in on and ("problem", "icd10:E11.9") not in on
    assert sum(kind == "problem" for kind, _ in on) == 1
    again = FeatureSpace.from_vocabularies(space.vocabularies())
    assert torch.equal(again.encode([probe]), space.encode([probe]))
    # an inpatient cohort has no problem list: the layout stays the history-only one
    plain = FeatureSpace.build([_encounter("a", {}, ["class|IMP"])])
    assert plain.problems is None and "problem-list" not in plain.vocabularies()


def test_problem_list_baseline_ranks_listed_codes_first_at_every_level():
    from fhir_assist.tasks.coding.models import problem_list_scores, record_rules

    train = [_encounter("a", {}, codes=("I10",)), _encounter("b", {}, codes=("E11.9",)),
             _encounter("c", {}, codes=("J45.909",))]
    labels = LabelSpace.build(train)
    test = [_encounter("d", {"icd10:I10": 1.0}, codes=("E11.9",)), _encounter("e", {}, codes=("I10",))]
    test[0].problems = ["icd10:E11.9", "icd10:J45.909"]
    frequency = torch.full((2, labels.size), 0.3)
    scores = problem_list_scores(test, labels, frequency)
    for head in ("billing", "3char"):
        sl = labels.slices()[head]
        top = {labels.token_of(sl.start + int(c))[1] for c in scores[0, sl].topk(2).indices}
        assert all("E11" in t or "J45" in t for t in top), (head, top)
    assert torch.allclose(scores[1], frequency[1] * 0.01)      # nothing listed: frequency order only
    rules = record_rules(test, labels, frequency)
    assert set(rules) == {"previous-visit", "problem-list"} and torch.equal(rules["problem-list"], scores)


def test_problem_tokens_from_the_visit_or_rebuilt_from_the_patient():
    from fhir_assist.adapter.problem_list import ProblemEntry
    from fhir_assist.adapter.timeline import PatientTimeline

    entry = ProblemEntry("pl0", (Code(ICD10CM, "E11.9"),), "active", T0 - 400 * DAY, None)
    ended = ProblemEntry("pl1", (Code(ICD10CM, "F32.A"),), "resolved", T0 - 400 * DAY, T0 + 50 * DAY)
    visits = [_visit(0, ["I10"]), _visit(1, ["I10"])]
    patient = PatientTimeline("p", "female", None, visits, problems=[entry, ended])
    # a visit the timeline builder did not see: its list comes from the patient's entries
    assert history.problem_tokens(_visit(2, [])) == []
    assert history.problem_tokens(_visit(2, []), patient) == ["icd10:E11.9"]
    assert history.problem_tokens(_visit(1, []), patient) == ["icd10:E11.9", "icd10:F32.A"]
    visits[0].problem_list = [Code(ICD10CM, "I10")]
    assert history.problem_tokens(visits[0], patient) == ["icd10:I10"]
