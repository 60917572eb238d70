"""Where to cut a ranked code list, and what the cut costs a coder.

Per-encounter rule (RE@R with calibrated probabilities): for a target recall R, recommend
the shortest prefix of the list whose *expected* recall Σ_{i≤k} p_i / Σ_i p_i reaches R.
A visit with one clear code gets one or two; a complex stay gets more. It needs
probabilities that mean what they say, so each head's scores are first recalibrated
(Platt scaling on validation: p' = σ(a·logit p + b)).

Probability floor (an option, reported beside the rule above): the same cut, but the list
also stops before the first code whose calibrated probability is below a floor — where each
further code is very unlikely, reading on costs a coder more than it finds. It keeps the list
short when the target recall cannot be reached cheaply (a long tail of small probabilities),
and reports the recall it reaches instead of promising the target.

Global-K rule (for comparison): one list length K for every encounter, the smallest that
reaches mean Recall@K ≥ R on validation (`thresholds.recall_cutoff`).

Write-back floor: the lowest calibrated probability t such that, on validation, the codes
scored ≥ t are right at least a given share of the time (precision).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["fit_platt", "apply_platt", "expected_recall_cut", "encounter_cuts", "global_k_cuts", "floor_cuts",
           "cut_metrics", "cut_report", "expected_calibration_error", "precision_curve", "precision_floor"]

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def fit_platt(scores, labels, steps: int = 200) -> dict:
    """(a, b) of p' = σ(a·logit(p) + b) minimising the log loss over every (row, column)."""
    x = torch.tensor(_logit(scores).ravel())
    y = torch.tensor((np.asarray(labels) > 0.5).ravel(), dtype=torch.float64)
    if x.numel() == 0 or y.sum() == 0 or y.sum() == y.numel():
        return {"a": 1.0, "b": 0.0}
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([params], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(params[0] * x + params[1], y)
        loss.backward()
        return loss

    optimiser.step(closure)
    a, b = (float(v) for v in params.detach())
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:   # never invert a ranking
        return {"a": 1.0, "b": 0.0}
    return {"a": round(a, 6), "b": round(b, 6)}


def apply_platt(scores, calibration: dict | None) -> np.ndarray:
    if not calibration:
        return np.asarray(scores, dtype=np.float64)
    z = calibration.get("a", 1.0) * _logit(scores) + calibration.get("b", 0.0)
    return 1.0 / (1.0 + np.exp(-z))


def expected_recall_cut(sorted_probs, target_recall: float) -> tuple[int, float]:
    """(k, expected recall at k) for probabilities sorted in descending order."""
    p = np.asarray(sorted_probs, dtype=np.float64)
    total = p.sum()
    if p.size == 0 or total <= 0:
        return 0, 0.0
    reached = np.cumsum(p) / total
    k = int(np.searchsorted(reached, target_recall - 1e-12)) + 1
    k = min(k, p.size)
    return k, float(reached[k - 1])


def encounter_cuts(probs, target_recall: float) -> np.ndarray:
    """The per-encounter list length for each row of calibrated probabilities."""
    p = -np.sort(-np.asarray(probs, dtype=np.float64), axis=1)
    total = p.sum(axis=1, keepdims=True)
    reached = np.cumsum(p, axis=1) / np.where(total > 0, total, 1.0)
    k = (reached < target_recall - 1e-12).sum(axis=1) + 1
    return np.minimum(k, p.shape[1]).astype(int)


def floor_cuts(probs, target_recall: float, min_probability: float) -> np.ndarray:
    """The per-encounter cut, stopped before the first code scored below `min_probability`
    (at least one code per encounter)."""
    p = np.asarray(probs, dtype=np.float64)
    above = (p >= min_probability).sum(axis=1)
    return np.maximum(np.minimum(encounter_cuts(p, target_recall), above), 1).astype(int)


def global_k_cuts(n_rows: int, k: int | None, n_columns: int) -> np.ndarray:
    return np.full(n_rows, min(int(k or n_columns), n_columns), dtype=int)


def cut_metrics(scores, labels, cuts) -> dict:
    """What a coder reads when each encounter's list is cut at `cuts[row]`: mean and 90th
    percentile list length, recall and precision at the cut (averaged over encounters with a
    true code), and RE@cut = wrong codes read per encounter. `true_per_encounter` gives the
    scale of the list lengths."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels) > 0.5
    cuts = np.asarray(cuts, dtype=int)
    keep = y.any(axis=1)
    if not keep.any():
        return {}
    s, y, cuts = s[keep], y[keep], cuts[keep]
    order = np.argsort(-s, axis=1, kind="stable")
    hits = np.take_along_axis(y, order, axis=1)
    inside = np.arange(hits.shape[1])[None, :] < cuts[:, None]
    found = (hits & inside).sum(axis=1)
    read = np.maximum(cuts, 0)
    return {
        "mean_recommended": round(float(read.mean()), 3),
        "p90_recommended": round(float(np.percentile(read, 90)), 3),
        "true_per_encounter": round(float(y.sum(axis=1).mean()), 3),
        "recall_at_cut": round(float((found / y.sum(axis=1)).mean()), 4),
        "precision_at_cut": round(float((found / np.maximum(read, 1)).mean()), 4),
        "re_at_cut": round(float((read - found).mean()), 3),
        "encounters": int(keep.sum()),
    }


def expected_calibration_error(scores, labels, bins: int = 15) -> float:
    """ECE over every (row, column) pair, equal-width bins, weighted by pair count."""
    p = np.asarray(scores, dtype=np.float64).ravel()
    y = (np.asarray(labels) > 0.5).ravel()
    if p.size == 0:
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    mean_p = np.bincount(which, weights=p, minlength=bins)
    mean_y = np.bincount(which, weights=y.astype(np.float64), minlength=bins)
    return float(np.abs(mean_p - mean_y).sum() / p.size)


def precision_curve(scores, labels, points: int = 60) -> list[list[float]]:
    """[[threshold, precision of the pairs scored ≥ threshold], …] on validation, thresholds
    descending: enough to find the write-back floor for any precision later. The points are
    spaced geometrically in rank: precision changes fastest among the first few hundred pairs,
    where the floor usually lies (an even spacing put its second point below precision 0.5)."""
    p = np.asarray(scores, dtype=np.float64).ravel()
    y = (np.asarray(labels) > 0.5).ravel()
    if not y.any():
        return []
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    n = min(p.size, max(int(y.sum()) * 20, 1000))      # far below the last true code is noise
    precision = np.cumsum(y[:n]) / np.arange(1, n + 1)
    at = np.unique(np.geomspace(1, n, points).astype(int) - 1)
    return [[round(float(p[i]), 6), round(float(precision[i]), 4)] for i in at]


def precision_floor(curve: list | None, precision: float) -> float:
    """The lowest threshold whose validation precision still reaches `precision`. Without a
    curve, `precision` itself (calibrated probabilities: a code at p is right p of the time,
    and the codes above it more often)."""
    best = None
    for threshold, prec in curve or []:
        if prec >= precision:
            best = threshold
    return float(precision if best is None else max(best, 0.0))


def cut_report(scores, labels, *, calibration: dict | None, global_k: int | None,
               target_recall: float = 0.9, min_probability: float | None = None) -> dict:
    """The coder-effort figures of one model's list at one level: the per-encounter rule on
    the calibrated scores and the global-K rule, with the calibration error before/after;
    with `min_probability`, the per-encounter rule with that floor beside them."""
    raw = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    calibrated = apply_platt(raw, calibration)
    per_encounter = cut_metrics(calibrated, y, encounter_cuts(calibrated, target_recall))
    # A model without a stored validation K (a baseline refitted at evaluation) has no global rule.
    global_k_rule = cut_metrics(raw, y, global_k_cuts(raw.shape[0], global_k, raw.shape[1])) if global_k else {}
    floor = None
    if min_probability is not None:
        floor = {"min_probability": min_probability,
                 **cut_metrics(calibrated, y, floor_cuts(calibrated, target_recall, min_probability))}
    return {
        "target_recall": target_recall,
        "per_encounter": per_encounter,
        "per_encounter_floor": floor,
        "global_k": {"k": int(global_k), **global_k_rule} if global_k else None,
        "ece": {"raw": round(expected_calibration_error(raw, y), 5),
                "calibrated": round(expected_calibration_error(calibrated, y), 5)},
    }
