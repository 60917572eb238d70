"""The served list's ordering is numpy's stable descending argsort, value for value."""
import numpy as np

from model_zoo.ordering import descending_order


def _stable(s):
    return np.argsort(-s, kind="stable")


def test_the_same_order_as_a_stable_sort_with_ties_zeros_and_nans():
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 3, 17, 300, 4324):
        for case in range(12):
            s = rng.beta(0.3, 5, size=n)
            if case % 3 == 1:
                s = np.round(s, 2)                       # long runs of equal scores
            if case % 4 == 2 and n:
                s[rng.integers(0, n, size=max(1, n // 5))] = 0.0
                s[rng.integers(0, n, size=max(1, n // 9))] = -0.0
            if case % 6 == 5 and n:
                s[rng.integers(0, n, size=max(1, n // 7))] = np.nan
            if case == 11:
                s = s.astype(np.float32)
            assert np.array_equal(descending_order(s), _stable(s)), (n, case)


def test_integer_scores_and_a_constant_list():
    assert np.array_equal(descending_order(np.array([3, 1, 3, 2, 1])), _stable(np.array([3, 1, 3, 2, 1])))
    assert np.array_equal(descending_order(np.full(50, 0.25)), np.arange(50))


def test_a_presorted_order_has_only_its_ties_put_in_position_order():
    rng = np.random.default_rng(7)
    for n in (0, 1, 5, 300):
        s = np.round(rng.beta(0.3, 5, size=n), 2)            # many ties
        # any order listing s from highest to lowest, ties in another order than position
        by_value_then_reversed = np.lexsort((-np.arange(n), -s))
        assert np.array_equal(descending_order(s, presorted=by_value_then_reversed), _stable(s))
        # one that does not list s from highest to lowest is ignored, as is a NaN
        assert np.array_equal(descending_order(s, presorted=np.arange(n)[::-1].copy()), _stable(s))
        if n:
            s[0] = np.nan
            assert np.array_equal(descending_order(s, presorted=by_value_then_reversed), _stable(s))
