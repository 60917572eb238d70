"""Per-encounter RE@R cut, calibration, write-back floor and the fusion stacker."""
from __future__ import annotations

import numpy as np

from model_zoo import recall_cut as rc
from model_zoo.fusion import FEATURES, Stacker


def test_expected_recall_cut_is_short_for_one_clear_code_and_long_for_a_complex_stay():
    clear = np.array([0.95, 0.02, 0.01, 0.01, 0.005, 0.005])
    complex_stay = np.array([0.6, 0.55, 0.5, 0.5, 0.45, 0.4])
    k, reached = rc.expected_recall_cut(clear, 0.9)
    assert k == 1 and reached >= 0.9
    k, reached = rc.expected_recall_cut(complex_stay, 0.9)
    assert k == 6                               # 2.6 of 3.0 after five codes is short of 0.9
    assert reached >= 0.9
    cuts = rc.encounter_cuts(np.stack([clear, complex_stay[::-1]]), 0.9)
    assert cuts.tolist() == [1, rc.expected_recall_cut(complex_stay, 0.9)[0]]
    assert rc.expected_recall_cut(np.zeros(4), 0.9) == (0, 0.0)


def test_cut_metrics_count_what_a_coder_reads():
    scores = np.array([[0.9, 0.8, 0.1, 0.05], [0.2, 0.9, 0.7, 0.1]])
    labels = np.array([[1, 0, 0, 1], [0, 1, 1, 0]])
    m = rc.cut_metrics(scores, labels, [2, 2])
    assert m["mean_recommended"] == 2 and m["true_per_encounter"] == 2
    assert m["recall_at_cut"] == 0.75          # (1/2 + 2/2) / 2
    assert m["precision_at_cut"] == 0.75       # (1/2 + 2/2) / 2
    assert m["re_at_cut"] == 0.5               # one wrong code read in the first encounter


def test_platt_scaling_calibrates_overconfident_scores():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.01, 0.3, size=(400, 50))
    labels = rng.uniform(size=truth.shape) < truth
    overconfident = 1 / (1 + np.exp(-(3 * np.log(truth / (1 - truth)) + 2)))
    calibration = rc.fit_platt(overconfident, labels)
    before = rc.expected_calibration_error(overconfident, labels)
    after = rc.expected_calibration_error(rc.apply_platt(overconfident, calibration), labels)
    assert after < before / 3
    assert 0.2 < calibration["a"] < 0.5


def test_write_back_floor_from_the_validation_precision_curve():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]])
    labels = np.array([[1, 1, 0, 1, 0, 0, 0, 0]])
    curve = rc.precision_curve(scores, labels, points=8)
    assert rc.precision_floor(curve, 0.75) == 0.6     # 3 right of the 4 scored ≥ 0.6
    assert rc.precision_floor(curve, 1.0) == 0.8
    assert rc.precision_floor(None, 0.5) == 0.5       # no curve: the calibrated score itself


def test_write_back_floor_is_found_among_many_pairs():
    # 20 sure codes, then 10,000 pairs of noise holding 100 more: every sure code is above the
    # floor at precision 0.5 (an evenly spaced curve had no point between the first pair and
    # the 60th, already below 0.5, and set the floor at the top score).
    rng = np.random.default_rng(0)
    scores = np.concatenate([np.linspace(0.99, 0.8, 20), rng.uniform(0, 0.5, 10_000)])
    labels = np.concatenate([np.ones(20), rng.uniform(size=10_000) < 0.01])
    floor = rc.precision_floor(rc.precision_curve(scores[None], labels[None]), 0.5)
    assert floor <= 0.8, floor


def test_stacker_learns_to_trust_the_informative_source():
    rng = np.random.default_rng(1)
    n = 20000
    y = rng.uniform(size=n) < 0.1
    rows = np.zeros((n, len(FEATURES)))
    rows[:, 0] = rng.normal(size=n) - 2                 # a ranker that knows nothing
    rows[:, 3] = np.where(y, rng.uniform(size=n) < 0.8, rng.uniform(size=n) < 0.05)   # previous visit
    stacker = Stacker.fit(rows, y)
    weights = stacker.to_dict()["weights"]
    assert weights["previous_visit"] > 2 and abs(weights["ranker_logit"]) < 0.2
    p = stacker.predict(rows)
    assert abs(p.mean() - y.mean()) < 0.01
    assert Stacker.from_dict(stacker.to_dict()).predict(rows[:5]).tolist() == p[:5].tolist()
