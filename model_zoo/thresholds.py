"""Decision thresholds chosen on validation data.

MICRON (Sec. 3.5): for every medicine, the cut-off thresholds of its validation
ROC curve are listed in descending order; the addition threshold δ1 is the
average over medicines of the 5th percentile of that list (a high score) and
the removal threshold δ2 the average of the 95th percentile (a low score), so
1 ≥ δ1 ≥ δ2 ≥ 0. Per-medicine values are kept too. `grid_search_thresholds`
is the alternative when that rule suits a cohort badly: (δ1, δ2) maximising
validation F1.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np

__all__ = ["roc_cutoffs", "MicronThresholds", "micron_thresholds", "best_f1_threshold",
           "grid_search_thresholds"]


def roc_cutoffs(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The thresholds at the corners of the ROC curve of one binary problem, in
    descending order (collinear points dropped, no artificial +inf first point).
    Empty when the labels hold a single class."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if labels.all() or not labels.any():
        return np.empty(0)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    ends = np.r_[np.nonzero(np.diff(scores))[0], scores.shape[0] - 1]
    tps = np.cumsum(labels)[ends]
    fps = (ends + 1) - tps
    thresholds = scores[ends]
    if thresholds.shape[0] > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        thresholds = thresholds[keep]
    return thresholds


@dataclass
class MicronThresholds:
    """δ1 (add) and δ2 (remove), global and per medicine (probability scale)."""

    add: float
    remove: float
    per_medicine_add: list[float] = field(default_factory=list)
    per_medicine_remove: list[float] = field(default_factory=list)
    mode: str = "global"  # "global" (the paper's averages) or "per-medicine"
    add_percentile: float = 5.0
    remove_percentile: float = 95.0
    rule: str = "roc-percentile"   # how add/remove were chosen: "roc-percentile" | "validation-grid"
    validation_f1: dict = field(default_factory=dict)  # validation F1 of each rule tried

    def vectors(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(δ1, δ2) as arrays of length `size` for the active mode."""
        if self.mode == "per-medicine" and len(self.per_medicine_add) == size:
            return np.asarray(self.per_medicine_add), np.asarray(self.per_medicine_remove)
        return np.full(size, self.add), np.full(size, self.remove)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MicronThresholds":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def micron_thresholds(scores: np.ndarray, labels: np.ndarray, *, add_percentile: float = 5.0,
                      remove_percentile: float = 95.0, skip: Iterable[int] = (0,),
                      mode: str = "global") -> MicronThresholds:
    """δ1/δ2 from validation probabilities `scores` [visits, |M|] and 0/1 `labels`.

    Percentiles are positions in each medicine's descending cut-off list (5 → near
    the top, a high threshold). Medicines whose validation labels hold one class
    (and `skip`, the OOV slot) get the global values.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    size = scores.shape[1]
    skip = set(skip)
    add_values = np.full(size, np.nan)
    remove_values = np.full(size, np.nan)
    for medicine in range(size):
        if medicine in skip:
            continue
        cutoffs = roc_cutoffs(scores[:, medicine], labels[:, medicine])
        if cutoffs.size == 0:
            continue
        ascending = cutoffs[::-1]
        # position p% into the descending list == (100-p)th percentile of the values
        add_values[medicine] = np.percentile(ascending, 100 - add_percentile)
        remove_values[medicine] = np.percentile(ascending, 100 - remove_percentile)
    known = ~np.isnan(add_values)
    if known.any():
        delta_add = float(np.mean(add_values[known]))
        delta_remove = float(np.mean(remove_values[known]))
    else:  # no usable validation labels: the usual 0.5 for both (full-set prediction)
        delta_add = delta_remove = 0.5
    delta_remove = min(delta_remove, delta_add)
    add_values[~known] = delta_add
    remove_values[~known] = delta_remove
    remove_values = np.minimum(remove_values, add_values)
    return MicronThresholds(add=delta_add, remove=delta_remove,
                            per_medicine_add=[float(v) for v in add_values],
                            per_medicine_remove=[float(v) for v in remove_values],
                            mode=mode, add_percentile=add_percentile,
                            remove_percentile=remove_percentile)


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray,
                      candidates: Iterable[float] | None = None) -> tuple[float, float]:
    """(threshold, mean per-row F1) maximising the mean per-row set F1 of
    `scores >= threshold` against 0/1 `labels` ([rows, items])."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    grid = np.asarray(list(candidates) if candidates is not None else np.linspace(0.05, 0.95, 37))
    best = (0.5, -1.0)
    true_counts = labels.sum(1)
    for threshold in grid:
        predicted = scores >= threshold
        hits = (predicted & labels).sum(1)
        sizes = predicted.sum(1) + true_counts
        f1 = np.where(sizes == 0, 1.0, 2 * hits / np.maximum(sizes, 1))
        value = float(f1.mean())
        if value > best[1]:
            best = (float(threshold), value)
    return best


# ----------------------------------------------------------------------------- coding (ICD/CCS)
# Per-level μF1 thresholds for automatic coding, and the RE@R-oriented list length a
# coder should read for assisted coding. Scores/labels are [encounters, labels] arrays.

def f1_thresholds_per_level(scores, labels, slices) -> dict:
    """{level: threshold maximising μF1 of that level's columns}, fitted on validation.
    `slices`: {level: slice of columns}."""
    from model_zoo.metrics.ranking import best_threshold_f1_micro

    s, y = np.asarray(scores), np.asarray(labels)
    return {level: best_threshold_f1_micro(s[:, sl], y[:, sl])[0] for level, sl in slices.items()}


def recall_cutoff(scores, labels, target_recall: float = 0.9, max_k: int | None = None):
    """Smallest list length K whose sample-averaged Recall@K reaches `target_recall`
    (None when no encounter has a positive; the full list length when even that falls
    short, e.g. labels never seen in training)."""

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels) > 0.5
    keep = y.any(axis=1)
    if not keep.any():
        return None
    s, y = s[keep], y[keep]
    order = np.argsort(-s, axis=1, kind="stable")
    hits = np.take_along_axis(y, order, axis=1)
    mean_recall = (np.cumsum(hits, axis=1) / hits.sum(axis=1, keepdims=True)).mean(axis=0)
    reached = np.nonzero(mean_recall >= target_recall - 1e-12)[0]
    k = int(reached[0]) + 1 if len(reached) else hits.shape[1]
    return min(k, max_k) if max_k else k


def stratified_recall_cutoffs(scores, labels, strata, target_recall: float = 0.9,
                              min_samples: int = 20) -> dict:
    """Cut-offs per stratum of "encounters like this one" (e.g. bucketed number of
    input codes): {"overall": K, "by_stratum": {stratum: K}}. Strata with fewer than
    `min_samples` validation encounters with a positive fall back to the overall K."""

    s, y = np.asarray(scores), np.asarray(labels) > 0.5
    strata = np.asarray(strata)
    overall = recall_cutoff(s, y, target_recall)
    by_stratum = {}
    for value in sorted(set(strata.tolist())):
        rows = (strata == value) & y.any(axis=1)
        k = recall_cutoff(s[rows], y[rows], target_recall) if rows.sum() >= min_samples else None
        by_stratum[str(value)] = overall if k is None else k
    return {"overall": overall, "by_stratum": by_stratum, "target_recall": target_recall}
__all__ += ["f1_thresholds_per_level", "recall_cutoff", "stratified_recall_cutoffs"]


def grid_search_thresholds(evaluate, add_grid: Iterable[float] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
                           remove_grid: Iterable[float] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
                           ) -> tuple[float, float, float]:
    """(δ1, δ2, value) maximising `evaluate(δ1, δ2)` over the grid with δ1 ≥ δ2.

    Used when the ROC-percentile rule does not suit a cohort: the pair is chosen
    on validation patients, never on test patients."""
    best: tuple[float, float, float] | None = None
    for add in add_grid:
        for remove in remove_grid:
            if remove > add:
                continue
            value = float(evaluate(add, remove))
            if best is None or value > best[2]:
                best = (float(add), float(remove), value)
    if best is None:
        raise ValueError("empty threshold grid")
    return best
