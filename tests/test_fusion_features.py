"""The fused list's feature rows: the record's three history sets land in their own columns,
and `problem_list` is the active problem list as the visit starts, not the earlier visits."""
from datetime import datetime, timedelta, timezone

import numpy as np

from fhir_assist.adapter.problem_list import ProblemEntry
from fhir_assist.adapter.visits import Code, PatientTimeline, Visit
from fhir_assist.suggest import fusion as F
from fhir_assist.tasks.coding.encounters import Encounter
from fhir_assist.tasks.coding.ontology import code_labels
from fhir_assist.tasks.coding.spaces import LabelSpace
from mappings.codesystems import ICD10CM
from model_zoo.fusion import FEATURES

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
CODES = ("I10", "E11.9", "J45.909", "K21.9")


def _labels() -> LabelSpace:
    encounters = []
    for code in CODES:
        labels = {}
        for head, token in code_labels(ICD10CM, code).items():
            labels.setdefault(head, set()).add(token)
        encounters.append(Encounter(code, code, "train", [], [], 50.0, "female", labels))
    return LabelSpace.build(encounters)


def _visit(i: int, diagnoses, problems=()) -> Visit:
    start = T0 + timedelta(days=30 * i)
    return Visit(f"e{i}", start, start + timedelta(hours=1), "AMB", diagnoses=[Code(ICD10CM, c) for c in diagnoses],
                 problem_list=[Code(ICD10CM, c) for c in problems])


def _position(labels: LabelSpace, code: str) -> int:
    return labels.column("billing", code_labels(ICD10CM, code)["billing"]) - labels.slices()["billing"].start


def test_problem_list_column_reads_the_visits_active_problem_list():
    labels = _labels()
    visits = [_visit(0, ["I10"]), _visit(1, ["E11.9"], problems=["J45.909"]),
              _visit(2, ["K21.9"], problems=["J45.909", "I10"])]
    history = F.history_columns(visits, labels)
    pos = {code: _position(labels, code) for code in CODES}
    assert history["e2"] == ({pos["E11.9"]}, {pos["I10"], pos["E11.9"]}, {pos["J45.909"], pos["I10"]})
    # The first visit has no history, but its problem list would still count.
    assert history["e0"] == (set(), set(), set())
    n = labels.slices()["billing"].stop - labels.slices()["billing"].start
    rows = F.feature_rows(np.full((1, n), 0.1), None, None, [history["e2"]])[0]
    column = {name: rows[:, FEATURES.index(name)] for name in ("previous_visit", "earlier_visit", "problem_list")}
    assert np.flatnonzero(column["problem_list"]).tolist() == sorted([pos["J45.909"], pos["I10"]])
    assert np.flatnonzero(column["previous_visit"]).tolist() == [pos["E11.9"]]
    assert np.flatnonzero(column["earlier_visit"]).tolist() == sorted([pos["I10"], pos["E11.9"]])
    # A code coded at an earlier visit but never on the problem list is not a problem.
    assert column["problem_list"][pos["E11.9"]] == 0


def test_problem_list_is_rebuilt_from_the_patients_problems_when_the_visit_lacks_it():
    labels = _labels()
    visit = _visit(3, ["K21.9"])           # a hook's visit built without the problem list
    problems = [ProblemEntry("c1", (Code(ICD10CM, "J45.909"),), "active", T0, None),
                ProblemEntry("c2", (Code(ICD10CM, "E11.9"),), "resolved", T0, T0 + timedelta(days=10))]
    patient = PatientTimeline("p", "female", None, visits=[visit], problems=problems)
    (previous, earlier, active), = F.history_columns([visit], labels, patient).values()
    assert active == {_position(labels, "J45.909")} and not previous and not earlier
