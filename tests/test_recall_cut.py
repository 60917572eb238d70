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


def test_threshold_curve_matches_the_lists_it_cuts_and_beats_the_expected_recall_rule():
    # Calibrated scores with a long tail: a few likely codes per encounter, hundreds of unlikely
    # ones whose true codes, right in total, fall in few encounters.
    rng = np.random.default_rng(1)
    n, c = 600, 400
    p = np.concatenate([rng.uniform(0.3, 0.95, (n, 4)), rng.uniform(0.0, 0.002, (n, c - 4))], axis=1)
    y = rng.uniform(size=p.shape) < p
    val, test = slice(0, 300), slice(300, n)
    curve = rc.recall_threshold_curve(p[val], y[val])
    assert [t for t, _ in curve][:2] == [0.5, 0.51]
    thresholds = [t for _, t in curve]
    assert thresholds == sorted(thresholds, reverse=True)          # higher targets, lower thresholds
    t = rc.threshold_for(curve, 0.9)
    assert rc.threshold_for(curve, 0.895) == t and rc.threshold_for(None, 0.9) is None
    # the recall the curve promises is what the lists cut at t find, on the same encounters
    keep = y[val].any(axis=1)
    found = rc.cut_metrics(p[val], y[val], rc.threshold_cuts(p[val], t))
    candidates, recall = rc._recall_at_thresholds(p[val], y[val])
    assert found["recall_at_cut"] == round(float(recall[candidates == t][0]), 4)
    assert found["recall_at_cut"] >= 0.9 and keep.sum() == found["encounters"]
    report = rc.cut_report(p[test], y[test], calibration=None, global_k=None, target_recall=0.9,
                           recall_thresholds=curve)
    short, expected = report["per_encounter"], report["expected_recall"]
    assert short["rule"].startswith("probability threshold") and short["threshold"] == round(t, 6)
    assert 0.85 <= short["recall_at_cut"] < expected["recall_at_cut"]
    assert short["mean_recommended"] < 0.5 * expected["mean_recommended"]
    assert rc.threshold_cut(np.sort(p[300])[::-1], t) == rc.threshold_cuts(p[300:301], t)[0]
    assert rc.threshold_cut(np.array([0.01, 0.001]), 0.5) == 1    # at least the top code
    without = rc.cut_report(p[test], y[test], calibration=None, global_k=None)
    assert without["per_encounter"] == {"rule": "expected-recall", **without["expected_recall"]}


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
