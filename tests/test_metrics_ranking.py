"""Ranking metrics on cases small enough to work out by hand."""
import math

import numpy as np
import pytest

from model_zoo.metrics import ranking as m

# one encounter, five codes ranked 0.9 > … > 0.5; the 2nd and 4th are the true codes
S = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
Y = np.array([[0, 1, 0, 1, 0]])


def test_rank_errors_at_recall_by_hand():
    assert m.rank_errors_at_recall(S, Y, 0.50) == 1      # 1 wrong code before the 1st true one
    assert m.rank_errors_at_recall(S, Y, 0.75) == 2      # ceil(0.75·2) = 2 true codes needed
    assert m.rank_errors_at_recall(S, Y, 0.90) == 2
    assert m.rank_errors_at_recall(S, Y, 1.00) == 2
    # RE@100 = coverage − |positives|
    assert m.coverage(S, Y) == 4
    assert m.rank_errors_at_recall(S, Y, 1.0) == m.coverage(S, Y) - Y.sum()


def test_re_at_r_averages_samples_and_skips_those_without_positives():
    s = np.vstack([S, [[0.1, 0.2, 0.3, 0.4, 0.5]], [[0.5, 0.4, 0.3, 0.2, 0.1]]])
    y = np.vstack([Y, [[1, 0, 0, 0, 0]], [[0, 0, 0, 0, 0]]])
    # sample 1: 2 errors; sample 2: the only true code is ranked last → 4 errors; sample 3 skipped
    assert m.rank_errors_at_recall(s, y, 1.0) == 3.0
    assert list(m.rank_errors_at_recall(s, y, 1.0, per_sample=True)) == [2.0, 4.0]


def test_perfect_ranking_has_no_rank_errors():
    s = np.array([[0.1, 0.9, 0.8, 0.2]])
    y = np.array([[0, 1, 1, 0]])
    for r in (0.5, 0.75, 0.9, 1.0):
        assert m.rank_errors_at_recall(s, y, r) == 0
    assert m.ndcg(s, y) == pytest.approx(1.0)


def test_recall_and_precision_at_k():
    assert m.recall_at_k(S, Y, 1) == 0.0
    assert m.recall_at_k(S, Y, 2) == 0.5
    assert m.recall_at_k(S, Y, 4) == 1.0
    assert m.recall_at_k_curve(S, Y, [1, 2, 30]) == {1: 0.0, 2: 0.5, 30: 1.0}
    assert m.precision_at_k(S, Y, 2) == 0.5
    assert m.precision_at_k(S, Y, 4) == 0.5


def test_ndcg_by_hand():
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert m.ndcg(S, Y) == pytest.approx(dcg / idcg)
    # cut at k=2: only the hit at rank 2 counts, ideal has two hits in the top 2
    assert m.ndcg(S, Y, k=2) == pytest.approx((1 / math.log2(3)) / idcg)


def test_average_precision_and_auroc_by_hand():
    # precision at the true codes' ranks: 1/2 and 2/4
    assert m.auprc_micro(S, Y) == pytest.approx(0.5)
    # pairs (true, false) ordered correctly: 0.8>0.7, 0.8>0.5, 0.6>0.5 → 3 of 6
    assert m.auroc_micro(S, Y) == pytest.approx(0.5)
    # ties are one threshold: AP 0.5, AUROC 0.5
    assert m.average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert m.auroc_micro([[0.5, 0.5]], [[1, 0]]) == pytest.approx(0.5)


def test_macro_variants_average_per_label():
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    y = np.array([[1, 0], [0, 1], [1, 0]])
    # label 0: scores 0.9(+) 0.3(+) 0.2(-) → AP 1, AUROC 1
    # label 1: scores 0.8(+) 0.7(-) 0.1(-) → AP 1, AUROC 1
    assert m.auprc_macro(s, y) == pytest.approx(1.0)
    assert m.auroc_macro(s, y) == pytest.approx(1.0)
    s2 = np.array([[0.1, 0.9], [0.9, 0.1]])
    y2 = np.array([[1, 1], [0, 0]])
    # label 0: the positive is ranked below the negative → AUROC 0, AP = 1/2
    assert m.auroc_macro(s2, y2) == pytest.approx(0.5)
    assert m.auprc_macro(s2, y2) == pytest.approx(0.75)


def test_f1_micro_macro_and_best_threshold():
    assert m.f1_micro(S, Y, 0.65) == pytest.approx(2 * 1 / (3 + 2))      # tp 1, 3 predicted, 2 true
    threshold, best = m.best_threshold_f1_micro(S, Y)
    assert best == pytest.approx(2 * 2 / (4 + 2))                       # top 4 predicted
    assert 0.5 < threshold < 0.6
    assert m.f1_micro(S, Y, threshold) == pytest.approx(best)
    s = np.array([[0.9, 0.2], [0.8, 0.6]])
    y = np.array([[1, 0], [0, 1]])
    # threshold 0.5: label 0 predicted twice, 1 true → F1 2/3; label 1 exact → 1
    assert m.f1_macro(s, y, 0.5) == pytest.approx((2 / 3 + 1) / 2)
    # per-label thresholds broadcast over columns
    assert m.f1_macro(s, y, [0.85, 0.5]) == pytest.approx(1.0)


def test_calibration_errors_by_hand():
    p = [0.9, 0.8, 0.7, 0.6, 0.5]
    y = [0, 1, 0, 1, 0]
    # one prediction per bin: gaps 0.9, 0.2, 0.7, 0.4, 0.5
    assert m.expected_calibration_error(p, y) == pytest.approx(2.7 / 5)
    assert m.maximum_calibration_error(p, y) == pytest.approx(0.9)
    assert m.expected_calibration_error([0.05, 0.95], [0, 1]) == pytest.approx(0.05)


def test_summary_has_the_evaluate_keys():
    out = m.ranking_summary(S, Y)
    assert tuple(out) == m.RANKING_KEYS
    assert out["re@100"] == 2 and out["recall@5"] == 1.0


def test_torch_inputs_accepted():
    torch = pytest.importorskip("torch")
    assert m.rank_errors_at_recall(torch.tensor(S), torch.tensor(Y), 0.5) == 1
