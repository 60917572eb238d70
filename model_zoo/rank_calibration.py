"""Recalibration of a ranked list's probabilities by where each code stands in its list.

A stacker fitted by log loss over every (encounter, code) pair is calibrated on average,
not at every depth of a list: on an ambulatory cohort it was under-confident among an
encounter's first ten codes and over-confident in the long tail. The expected-recall cut
divides the head's probability mass by the whole list's, so a tail that claims too much
makes the cut read hundreds of codes.

Each code's within-encounter rank (1 = the encounter's highest score) falls in a band
(`edges` give each band's first rank); per band a Platt map p' = σ(a·logit p + b) is fitted
on validation pairs. Inside a band the map keeps the order; where two bands' maps would put a
lower-ranked code above a higher-ranked one, the lower one is capped at the score above it
(a running minimum down the list), so the list's order never changes and its scores never
rise down the list.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_zoo.ordering import descending_order
from model_zoo.recall_cut import apply_platt, fit_platt

__all__ = ["RankBandCalibration", "BAND_EDGES", "within_row_ranks", "band_summary"]

# First rank of each band: the head is split finely, where a coder stops reading.
BAND_EDGES = (1, 3, 6, 11, 23, 51, 101, 301)
_MAX_PAIRS = 2_000_000        # pairs a band's fit looks at (an even subsample above)


def within_row_ranks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, ranks) of a [N, C] score matrix: order[r] are row r's columns by descending
    score (stable), ranks[r, c] the 1-based rank of column c in its row."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    order = np.argsort(-s, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, s.shape[1] + 1)[None, :].repeat(s.shape[0], 0), axis=1)
    return order, ranks


def _band_of(ranks: np.ndarray, edges) -> np.ndarray:
    return np.searchsorted(np.asarray(edges), ranks, side="right") - 1


@dataclass
class RankBandCalibration:
    edges: tuple[int, ...] = BAND_EDGES
    maps: list[dict] = field(default_factory=list)      # per band {"a", "b"}; identity when empty
    _by_length: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def fit(cls, scores, labels, edges=BAND_EDGES, seed: int = 0) -> "RankBandCalibration":
        """Per-band Platt maps on validation [N, C] scores and 0/1 labels."""
        s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        y = np.atleast_2d(np.asarray(labels) > 0.5)
        _, ranks = within_row_ranks(s)
        band = _band_of(ranks, edges)
        rng = np.random.default_rng(seed)
        maps = []
        for b in range(len(edges)):
            inside = band == b
            ps, ys = s[inside], y[inside]
            if ps.size > _MAX_PAIRS:        # a uniform subsample keeps the band's base rate
                pick = rng.choice(ps.size, size=_MAX_PAIRS, replace=False)
                ps, ys = ps[pick], ys[pick]
            maps.append(fit_platt(ps, ys) if ps.size else {"a": 1.0, "b": 0.0})
        return cls(tuple(int(e) for e in edges), maps)

    def apply(self, scores) -> np.ndarray:
        """Recalibrated scores, the same shape as `scores` ([C] for one encounter or [N, C])."""
        raw = np.asarray(scores, dtype=np.float64)
        if not self.maps:
            return raw
        if raw.ndim == 1:
            return self.ranked(raw)[0]
        s = np.atleast_2d(raw)
        order, ranks = within_row_ranks(s)
        band = _band_of(ranks, self.edges)
        out = np.empty_like(s)
        for b, calibration in enumerate(self.maps):
            inside = band == b
            out[inside] = apply_platt(s[inside], calibration)
        # Never let a score rise down the list: a lower band's map may start above the
        # previous band's last score.
        ranked = np.minimum.accumulate(np.take_along_axis(out, order, axis=1), axis=1)
        np.put_along_axis(out, order, ranked, axis=1)
        return out.reshape(raw.shape)

    def ranked(self, scores) -> tuple[np.ndarray, np.ndarray]:
        """(`apply` of one encounter's [C] scores, the result's `descending_order`). In rank order
        every band's map is one pair of per-rank coefficient arrays (no rank array, no masks),
        the running minimum needs no gather back, and the result keeps the list's order, so one
        sort serves both."""
        s = np.asarray(scores, dtype=np.float64)
        order = descending_order(s)
        if not self.maps:
            return s, order
        a, b = self._coefficients_by_rank(len(s))
        out = apply_platt(s[order], {"a": a, "b": b})      # each rank its band's map
        back = np.empty_like(out)
        back[order] = np.minimum.accumulate(out)
        return back, descending_order(back, presorted=order)

    def _coefficients_by_rank(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of the map at each of ranks 1..n, kept per list length."""
        kept = self._by_length
        if n not in kept:
            a, b = np.ones(n), np.zeros(n)
            bounds = [e - 1 for e in self.edges] + [n]
            for band, calibration in enumerate(self.maps):
                lo, hi = min(bounds[band], n), min(max(bounds[band + 1], bounds[band]), n)
                a[lo:hi], b[lo:hi] = calibration.get("a", 1.0), calibration.get("b", 0.0)
            kept[n] = (a, b)
        return kept[n]

    def to_dict(self) -> dict:
        return {"edges": list(self.edges), "maps": [dict(m) for m in self.maps]}

    @classmethod
    def from_dict(cls, data: dict | None) -> "RankBandCalibration":
        """An identity calibration for None (artifacts stored before the bands existed)."""
        if not data:
            return cls(BAND_EDGES, [])
        edges, maps = tuple(int(e) for e in data["edges"]), [dict(m) for m in data["maps"]]
        if len(edges) != len(maps) or list(edges) != sorted(edges) or edges[0] != 1:
            raise ValueError(f"rank-band calibration: {len(edges)} bands from rank 1 upwards need as many maps")
        return cls(edges, maps)


def band_summary(scores, labels, edges=BAND_EDGES) -> list[dict]:
    """Per band, per encounter: codes predicted (sum of scores) and found (true codes)."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    y = np.atleast_2d(np.asarray(labels) > 0.5)
    _, ranks = within_row_ranks(s)
    band = _band_of(ranks, edges)
    n = max(s.shape[0], 1)
    out = []
    for b, first in enumerate(edges):
        inside = band == b
        last = edges[b + 1] - 1 if b + 1 < len(edges) else None
        out.append({"ranks": f"{first}-{last}" if last else f"{first}+",
                    "predicted": round(float(s[inside].sum() / n), 3),
                    "found": round(float(y[inside].sum() / n), 3)})
    return out
