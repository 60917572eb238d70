"""Medication-change metrics on hand-computed cases (MICRON paper definitions)."""
import math

import numpy as np
import pytest

from model_zoo.metrics import medication as med


def _ddi():
    matrix = np.zeros((5, 5))
    for i, j in ((2, 3), (3, 4)):
        matrix[i, j] = matrix[j, i] = 1
    return matrix


def _patients():
    a = med.PatientPrediction(
        true_sets=[{1, 2}, {1, 3}, {3}],
        predicted_sets=[{1, 2}, {1, 2, 3}, {3, 4}],
        scores=[None, np.array([0.0, 0.9, 0.6, 0.8, 0.1]), np.array([0.0, 0.2, 0.1, 0.6, 0.7])])
    b = med.PatientPrediction(true_sets=[{1}, set()], predicted_sets=[{1}, set()],
                              scores=[None, np.array([0.0, 0.3, 0.2, 0.1, 0.0])])
    c = med.PatientPrediction(true_sets=[{2}], predicted_sets=[{2}], scores=[None])
    return [a, b, c]


def test_set_metrics_by_hand():
    assert med.set_jaccard({1, 3}, {1, 2, 3}) == pytest.approx(2 / 3)
    assert med.set_f1({1, 3}, {1, 2, 3}) == pytest.approx(0.8)
    assert med.set_f1({3}, {3, 4}) == pytest.approx(2 / 3)
    assert med.set_jaccard(set(), set()) == 1.0 and med.set_f1(set(), set()) == 1.0
    assert med.set_f1({1}, {2}) == 0.0 and med.set_jaccard({1}, set()) == 0.0


def test_visit_prauc_by_hand():
    # ranking 1(.9,T) 3(.8,T) 2(.6,F) 4(.1,F): both positives first
    assert med.visit_prauc({1, 3}, np.array([0.0, 0.9, 0.6, 0.8, 0.1]), exclude=[0]) == 1.0
    # ranking 4(.7,F) 3(.6,T): precision 1/2 at the only positive
    assert med.visit_prauc({3}, np.array([0.0, 0.2, 0.1, 0.6, 0.7]), exclude=[0]) == 0.5
    # tied scores form one threshold: precision 1/2 at recall 1
    assert med.visit_prauc({1}, np.array([0.5, 0.5]), exclude=[]) == 0.5
    assert med.visit_prauc(set(), np.array([0.1, 0.2])) is None


def test_ddi_rate_counts_unordered_pairs():
    ddi = _ddi()
    assert med.ddi_pair_counts({1, 2, 3}, ddi) == (1, 3)
    assert med.ddi_pair_counts({3}, ddi) == (0, 0)
    assert med.ddi_rate([{1, 2, 3}, {3, 4}], ddi) == pytest.approx(2 / 4)
    assert med.ddi_rate([{1}], ddi) == 0.0


def test_change_errors_measured_against_predicted_previous_set():
    a = _patients()[0]
    # t=2: base {1,2}: add target {3} = made {3}; remove target {2}, made {} → 1
    # t=3: base {1,2,3}: add target {}, made {4} → 1; remove target {1,2} = made {1,2}
    assert med.change_errors(a) == (pytest.approx(1 / 3), pytest.approx(1 / 3))


def test_change_errors_with_observed_base():
    patient = med.PatientPrediction(true_sets=[{1}, {1, 2}, {2}], predicted_sets=[{1}, {1}, {2}],
                                    previous=[set(), {1}, {1, 2}])
    # t=2: base {1}: add target {2}, made {} → 1; t=3: base {1,2}: remove target {1} = made {1}
    assert med.change_errors(patient) == (pytest.approx(1 / 3), 0.0)


def test_medication_change_metrics_by_hand():
    result = med.medication_change_metrics(_patients(), _ddi())
    assert result["patients"] == 2 and result["visits"] == 3
    assert result["jaccard"] == pytest.approx((7 / 12 + 1) / 2)
    assert result["f1"] == pytest.approx((11 / 15 + 1) / 2)
    assert result["prauc"] == pytest.approx(0.75)  # patient B's visit has no positive: skipped
    assert result["err_add"] == pytest.approx(1 / 6)
    assert result["err_remove"] == pytest.approx(1 / 6)
    assert result["ddi_rate"] == pytest.approx(0.5)
    assert tuple(k for k in med.MEDICATION_KEYS) == (
        "ddi_rate", "jaccard", "f1", "prauc", "err_add", "err_remove")


def test_metrics_without_scores_or_ddi():
    patients = [med.PatientPrediction([{1}, {1}], [{1}, {1}])]
    result = med.medication_change_metrics(patients, None)
    assert result["jaccard"] == 1.0 and math.isnan(result["prauc"]) and math.isnan(result["ddi_rate"])
    with pytest.raises(ValueError):
        med.medication_change_metrics([med.PatientPrediction([{1}, {1}], [{1}])])


def test_reexported_from_package():
    from model_zoo import metrics

    assert metrics.medication_change_metrics is med.medication_change_metrics
