"""Rank-band recalibration of a fused list, the probability-floor cut, and fusion weights
stored before the earlier-visit feature existed."""
import numpy as np

from model_zoo import recall_cut as rc
from model_zoo.fusion import FEATURES, Stacker
from model_zoo.rank_calibration import RankBandCalibration, band_summary, within_row_ranks


def _miscalibrated(n: int, c: int = 400, seed: int = 0):
    """Lists whose head is under-confident and whose tail over-confident, as a stack fitted
    over all pairs at once can be: the true probability of a code depends on its rank."""
    rng = np.random.default_rng(seed)
    scores = np.sort(rng.uniform(0.0005, 0.02, size=(n, c)), axis=1)[:, ::-1].copy()
    scores[:, :3] = rng.uniform(0.3, 0.5, size=(n, 3))          # the head says 0.3-0.5 ...
    truth = 0.1 * scores                                         # ... the tail a tenth of that
    truth[:, :3] = 1.8 * scores[:, :3]                           # ... and the head nearly twice as much
    labels = rng.uniform(size=(n, c)) < truth
    return scores, labels


def test_rank_bands_fix_an_underconfident_head_and_an_overconfident_tail():
    scores, labels = _miscalibrated(3000)
    bands = RankBandCalibration.fit(scores, labels)
    test_scores, test_labels = _miscalibrated(2000, seed=1)
    after = bands.apply(test_scores)
    before_bands, after_bands = band_summary(test_scores, test_labels), band_summary(after, test_labels)
    head_before, head_after = before_bands[0], after_bands[0]
    assert head_before["predicted"] < 0.7 * head_before["found"]
    assert abs(head_after["predicted"] - head_after["found"]) < 0.1 * head_after["found"]
    tail_before, tail_after = before_bands[-1], after_bands[-1]
    assert tail_before["predicted"] > 2 * tail_before["found"]
    assert abs(tail_after["predicted"] - tail_after["found"]) < 0.25 * tail_after["found"]
    assert rc.expected_calibration_error(after, test_labels) < rc.expected_calibration_error(test_scores, test_labels)
    # The per-encounter cut at 0.9 gets far shorter once the tail stops claiming recall.
    assert rc.encounter_cuts(after, 0.9).mean() < 0.5 * rc.encounter_cuts(test_scores, 0.9).mean()


def test_rank_bands_keep_each_list_in_order_and_round_trip():
    scores, labels = _miscalibrated(500)
    bands = RankBandCalibration.fit(scores, labels)
    after = bands.apply(scores)
    order, _ = within_row_ranks(scores)
    ranked = np.take_along_axis(after, order, axis=1)
    assert (np.diff(ranked, axis=1) <= 1e-12).all(), "a score rose down the list"
    again = RankBandCalibration.from_dict(bands.to_dict())
    assert np.allclose(again.apply(scores[7]), after[7])      # one encounter at a time, as served


def test_one_encounter_is_recalibrated_to_the_same_bits_as_a_batch_row():
    """A served call recalibrates one list at a time (band slices in rank order); a batch row
    (rank masks) must give exactly the same floats: ties, lists shorter than the bands."""
    rng = np.random.default_rng(3)
    bands = RankBandCalibration.fit(*_miscalibrated(300))
    for c in (1, 2, 7, 50, 300, 301, 400, 2000):
        for _ in range(10):
            scores = rng.beta(0.3, 5, size=c)
            if rng.random() < 0.5:
                scores = np.round(scores, 2)               # many ties
            assert np.array_equal(bands.apply(scores), bands.apply(scores[None])[0])
            # and the served call's order of the result is the stable sort's
            values, order = bands.ranked(scores)
            assert np.array_equal(values, bands.apply(scores))
            assert np.array_equal(order, np.argsort(-values, kind="stable"))


def test_no_rank_bands_stored_means_the_stacker_probabilities():
    scores, _ = _miscalibrated(5)
    assert np.array_equal(RankBandCalibration.from_dict(None).apply(scores), scores)


def test_probability_floor_stops_the_cut_and_reports_the_recall_it_reaches():
    p = np.array([[0.9, 0.5] + [0.03] * 20, [0.02] + [0.01] * 21])
    y = np.zeros_like(p, dtype=int)
    y[0, [0, 1, 21]] = 1
    y[1, 0] = 1
    assert rc.encounter_cuts(p, 0.9).tolist() == [16, 20]
    assert rc.floor_cuts(p, 0.9, 0.05).tolist() == [2, 1]      # at least one code per encounter
    report = rc.cut_report(p, y, calibration=None, global_k=None, target_recall=0.9, min_probability=0.05)
    floor = report["per_encounter_floor"]
    assert floor["min_probability"] == 0.05 and floor["mean_recommended"] == 1.5
    assert floor["recall_at_cut"] == round((2 / 3 + 1) / 2, 4)
    assert rc.cut_report(p, y, calibration=None, global_k=None)["per_encounter_floor"] is None


def test_fusion_weights_stored_before_the_earlier_visit_feature_score_as_fitted():
    # Then `problem_list` was "recorded at any earlier visit"; the real problem list did not count.
    old = {"weights": {"ranker_logit": 0.9, "text_logit": 0.4, "text_read": -0.2, "previous_visit": 1.5,
                       "problem_list": 2.0}, "bias": -1.0}
    stacker = Stacker.from_dict(old)
    rows = np.zeros((3, len(FEATURES)))
    rows[:, 0] = -3.0
    rows[1, FEATURES.index("earlier_visit")] = 1.0
    rows[2, FEATURES.index("problem_list")] = 1.0
    p = stacker.predict(rows)
    expected = 1 / (1 + np.exp(-(0.9 * -3.0 - 1.0 + np.array([0.0, 2.0, 0.0]))))
    assert np.allclose(p, expected)
    assert stacker.to_dict()["weights"]["earlier_visit"] == 2.0
