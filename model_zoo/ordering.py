"""One list's positions by descending score, ties in position order: `np.argsort(-s,
kind="stable")`, faster for the few thousand codes of a served call.

numpy's stable sort of floats is a merge sort (about 0.25 ms for 4,000 codes here); its
default sort runs vectorised (about 0.09 ms) but puts equal scores in any order. This takes
the default sort, then puts each run of equal scores (rare among probabilities, except
capped or exactly equal ones) back in position order: the same array as the stable sort.
"""
from __future__ import annotations

import numpy as np

__all__ = ["descending_order"]


def descending_order(scores, presorted: np.ndarray | None = None) -> np.ndarray:
    """Positions of a 1-D array by descending value, equal values in position order; NaNs
    last, in position order (exactly `np.argsort(-scores, kind="stable")`).

    `presorted`: positions already listing `scores` from highest to lowest, whose runs of equal
    values only are put in position order (no sort); ignored unless it does."""
    s = np.asarray(scores)
    negated = -s
    order = None
    if presorted is not None and len(presorted) == len(s):
        ranked = negated[presorted]
        if not (ranked[1:] < ranked[:-1]).any() and not np.isnan(ranked).any():
            order = presorted.copy()
    if order is None:
        order = np.argsort(negated)
        ranked = negated[order]
    tied = ranked[1:] == ranked[:-1]
    if s.dtype.kind == "f":
        nan = np.isnan(ranked)
        tied |= nan[1:] & nan[:-1]
    if not tied.any():
        return order
    in_run = np.zeros(len(order), dtype=bool)
    in_run[1:] |= tied
    in_run[:-1] |= tied
    places = np.flatnonzero(in_run)
    run = np.concatenate(([0], np.cumsum(~tied)))[places]      # which run each place is in
    members = order[places]
    order[places] = members[np.lexsort((members, run))]
    return order
