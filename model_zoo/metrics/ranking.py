"""Ranking and multilabel-classification metrics for code suggestion.

Every function takes `scores` and `labels` as arrays of shape [samples, labels]
(numpy or torch; converted to numpy here). Scores are anything where "higher
means more likely"; labels are 0/1. Samples with no positive label are left out
of the per-sample ranking metrics (recall, RE@R, NDCG are undefined for them).

RE@R (RankErrors@Recall): the number of non-relevant codes a coder reads before
a fraction R of the relevant codes has been found, going down the ranked list.
RE@100 equals coverage minus the number of positives. Ties in scores are broken
by column order (a stable sort), the same for every model, so a constant ranker
is scored deterministically.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "rank_errors_at_recall", "re_at_r_curve", "recall_at_k", "recall_at_k_curve",
    "precision_at_k", "ndcg", "coverage", "average_precision", "auprc_micro", "auprc_macro",
    "auroc_micro", "auroc_macro", "f1_micro", "f1_macro", "calibration_bins",
    "expected_calibration_error", "maximum_calibration_error", "best_threshold_f1_micro",
    "ranking_summary", "RANKING_KEYS",
]

# The per-level keys `fhir-assist evaluate` reports, in print order.
RANKING_KEYS = ("ndcg", "re@50", "re@75", "re@90", "re@100", "recall@5", "recall@10",
                "recall@20", "recall@30", "auprc_micro", "f1_micro")


def _as_arrays(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = _np(scores).astype(np.float64, copy=False)
    y = _np(labels)
    if s.ndim == 1:
        s, y = s[None, :], y[None, :]
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    return s, (y > 0.5)


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _sorted_hits(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """labels of each row re-ordered by decreasing score (stable: ties keep column order)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(labels, order, axis=1)


def _with_positives(scores, labels):
    s, y = _as_arrays(scores, labels)
    keep = y.any(axis=1)
    return s[keep], y[keep]


# ---------------------------------------------------------------- rank based, per sample

def rank_errors_at_recall(scores, labels, recall: float = 0.9, *, per_sample: bool = False):
    """Mean number of negatives ranked above the point where `recall` of positives is reached.

    `recall` is a fraction in (0, 1] (0.9 for RE@90). For a sample with P positives the
    reading stops at the ceil(recall·P)-th positive.
    """
    if not 0.0 < recall <= 1.0:
        raise ValueError("recall must be in (0, 1]")
    s, y = _with_positives(scores, labels)
    if len(s) == 0:
        return np.zeros(0) if per_sample else float("nan")
    hits = _sorted_hits(s, y)
    cum = np.cumsum(hits, axis=1)
    n_pos = cum[:, -1]
    needed = np.ceil(recall * n_pos - 1e-9).astype(np.int64)
    needed = np.maximum(needed, 1)
    # first (0-based) position where the running count of positives reaches `needed`
    stop = np.argmax(cum >= needed[:, None], axis=1)
    errors = (stop + 1) - needed
    return errors.astype(np.float64) if per_sample else float(errors.mean())


def re_at_r_curve(scores, labels, recalls: Iterable[float] = None) -> dict[float, float]:
    """RE@R for each R (fractions); default R = 5 %, 10 %, …, 100 %."""
    recalls = list(recalls) if recalls is not None else [r / 100 for r in range(5, 101, 5)]
    return {r: rank_errors_at_recall(scores, labels, r) for r in recalls}


def coverage(scores, labels) -> float:
    """Mean list length needed to reach every positive (1-based)."""
    s, y = _with_positives(scores, labels)
    if len(s) == 0:
        return float("nan")
    return rank_errors_at_recall(s, y, 1.0) + float(y.sum(axis=1).mean())


def recall_at_k(scores, labels, k: int, *, per_sample: bool = False):
    """Mean fraction of a sample's positives found in its top k."""
    s, y = _with_positives(scores, labels)
    if len(s) == 0:
        return np.zeros(0) if per_sample else float("nan")
    hits = _sorted_hits(s, y)
    found = hits[:, :k].sum(axis=1)
    r = found / hits.sum(axis=1)
    return r if per_sample else float(r.mean())


def recall_at_k_curve(scores, labels, ks: Sequence[int]) -> dict[int, float]:
    s, y = _with_positives(scores, labels)
    if len(s) == 0:
        return {k: float("nan") for k in ks}
    hits = _sorted_hits(s, y)
    cum = np.cumsum(hits, axis=1)
    total = cum[:, -1]
    width = hits.shape[1]
    return {k: float((cum[:, min(k, width) - 1] / total).mean()) if k > 0 else 0.0 for k in ks}


def precision_at_k(scores, labels, k: int) -> float:
    """Mean fraction of the top k that are positives (over samples with ≥ 1 positive)."""
    s, y = _with_positives(scores, labels)
    if len(s) == 0:
        return float("nan")
    return float(_sorted_hits(s, y)[:, :k].sum(axis=1).mean() / k)


def ndcg(scores, labels, k: int | None = None, *, per_sample: bool = False):
    """Normalised discounted cumulative gain with binary gains, over the whole list or top k."""
    s, y = _with_positives(scores, labels)
    if len(s) == 0:
        return np.zeros(0) if per_sample else float("nan")
    hits = _sorted_hits(s, y).astype(np.float64)
    width = hits.shape[1] if k is None else min(k, hits.shape[1])
    discount = 1.0 / np.log2(np.arange(2, width + 2))
    dcg = (hits[:, :width] * discount).sum(axis=1)
    n_pos = np.minimum(hits.sum(axis=1).astype(np.int64), width)
    ideal_cum = np.concatenate([[0.0], np.cumsum(discount)])
    value = dcg / ideal_cum[n_pos]
    return value if per_sample else float(value.mean())


# ---------------------------------------------------------------- threshold free, flattened

def average_precision(scores, labels) -> float:
    """Area under the precision-recall step curve (tied scores form one threshold)."""
    s = _np(scores).astype(np.float64).ravel()
    y = (_np(labels).ravel() > 0.5)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    # last index of each group of equal scores = the thresholds
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp_t = tp[last].astype(np.float64)
    precision = tp_t / (last + 1)
    recall = tp_t / n_pos
    d_recall = np.diff(np.r_[0.0, recall])
    return float((d_recall * precision).sum())


def auprc_micro(scores, labels) -> float:
    s, y = _as_arrays(scores, labels)
    return average_precision(s, y)


def auprc_macro(scores, labels) -> float:
    """Mean per-label average precision over labels with at least one positive."""
    s, y = _as_arrays(scores, labels)
    values = [average_precision(s[:, j], y[:, j]) for j in np.nonzero(y.any(axis=0))[0]]
    return float(np.mean(values)) if values else float("nan")


def _auroc_1d(s: np.ndarray, y: np.ndarray) -> float:
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank (Mann-Whitney)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.r_[0, np.nonzero(np.diff(xs))[0] + 1, len(xs)]
    ranks_sorted = np.empty(len(xs))
    for a, b in zip(boundaries[:-1], boundaries[1:]):
        ranks_sorted[a:b] = (a + 1 + b) / 2.0
    ranks = np.empty(len(xs))
    ranks[order] = ranks_sorted
    return ranks


def auroc_micro(scores, labels) -> float:
    s, y = _as_arrays(scores, labels)
    return _auroc_1d(s.ravel(), y.ravel())


def auroc_macro(scores, labels) -> float:
    """Mean per-label AUROC over labels that have both positives and negatives."""
    s, y = _as_arrays(scores, labels)
    values = [_auroc_1d(s[:, j], y[:, j]) for j in range(y.shape[1])
              if 0 < y[:, j].sum() < y.shape[0]]
    return float(np.mean(values)) if values else float("nan")


# ---------------------------------------------------------------- thresholded

def _predict(scores: np.ndarray, threshold) -> np.ndarray:
    t = np.asarray(threshold, dtype=np.float64)
    return scores >= t  # broadcasts a scalar or a per-label row


def f1_micro(scores, labels, threshold=0.5) -> float:
    s, y = _as_arrays(scores, labels)
    pred = _predict(s, threshold)
    tp = float((pred & y).sum())
    denom = float(pred.sum() + y.sum())
    return 2 * tp / denom if denom else 0.0


def f1_macro(scores, labels, threshold=0.5) -> float:
    """Mean per-label F1 over labels with at least one positive in `labels`."""
    s, y = _as_arrays(scores, labels)
    pred = _predict(s, threshold)
    cols = np.nonzero(y.any(axis=0))[0]
    if len(cols) == 0:
        return float("nan")
    tp = (pred & y).sum(axis=0)[cols]
    denom = (pred.sum(axis=0) + y.sum(axis=0))[cols]
    return float(np.mean(2 * tp / denom))


def best_threshold_f1_micro(scores, labels) -> tuple[float, float]:
    """The single threshold maximising μF1, and that μF1 (exact search over all scores)."""
    s = _np(scores).astype(np.float64).ravel()
    y = (_np(labels).ravel() > 0.5)
    n_pos = int(y.sum())
    if n_pos == 0 or len(s) == 0:
        return 0.5, 0.0
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    f1 = 2 * tp[last] / ((last + 1) + n_pos)
    best = int(np.argmax(f1))
    idx = last[best]
    # halfway to the next lower score keeps the threshold robust to tiny shifts
    below = s[idx + 1] if idx + 1 < len(s) else s[idx] - 1e-6
    return float((s[idx] + below) / 2.0), float(f1[best])


# ---------------------------------------------------------------- calibration

def calibration_bins(probabilities, labels, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-width bins over [0, 1]: count, mean predicted probability, observed frequency."""
    p = np.clip(_np(probabilities).astype(np.float64).ravel(), 0.0, 1.0)
    y = (_np(labels).ravel() > 0.5).astype(np.float64)
    which = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=p, minlength=n_bins) / count
        frequency = np.bincount(which, weights=y, minlength=n_bins) / count
    return {"count": count, "confidence": confidence, "frequency": frequency,
            "edges": np.linspace(0.0, 1.0, n_bins + 1)}


def expected_calibration_error(probabilities, labels, n_bins: int = 10) -> float:
    b = calibration_bins(probabilities, labels, n_bins)
    used = b["count"] > 0
    if not used.any():
        return float("nan")
    gap = np.abs(b["frequency"][used] - b["confidence"][used])
    return float((gap * b["count"][used]).sum() / b["count"].sum())


def maximum_calibration_error(probabilities, labels, n_bins: int = 10) -> float:
    b = calibration_bins(probabilities, labels, n_bins)
    used = b["count"] > 0
    if not used.any():
        return float("nan")
    return float(np.abs(b["frequency"][used] - b["confidence"][used]).max())


# ---------------------------------------------------------------- the evaluate table

def ranking_summary(scores, labels, *, threshold=0.5) -> dict[str, float]:
    """The per-level figures `fhir-assist evaluate` prints (keys in RANKING_KEYS)."""
    s, y = _as_arrays(scores, labels)
    out: dict[str, float] = {"ndcg": ndcg(s, y)}
    for r in (50, 75, 90, 100):
        out[f"re@{r}"] = rank_errors_at_recall(s, y, r / 100)
    for k, v in recall_at_k_curve(s, y, (5, 10, 20, 30)).items():
        out[f"recall@{k}"] = v
    out["auprc_micro"] = auprc_micro(s, y)
    out["f1_micro"] = f1_micro(s, y, threshold)
    return {k: (None if isinstance(v, float) and math.isnan(v) else float(v)) for k, v in out.items()}
