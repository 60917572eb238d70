"""Where to cut a ranked code list, and what the cut costs a coder.

Per-encounter rule (the default): recommend every code whose calibrated probability reaches a
threshold t, at least one per encounter, with t fitted on validation as the highest that still
reaches the target recall there (mean per-encounter recall, as reported). Each encounter gets its
own list length — a visit with one clear code gets one or two, a complex stay more — and since
the probabilities are calibrated, one threshold for every encounter is the shortest set of lists
that finds a given share of the codes (the likeliest codes first, wherever they are).
`recall_threshold_curve` stores t for a grid of targets, so a service can cut at any target.

Expected-recall rule (the issue's first definition, an option): the shortest prefix whose
*expected* recall Σ_{i≤k} p_i / Σ_i p_i reaches R. It overshoots: every encounter carries the
same long tail of small probabilities (thousands of codes at 10⁻⁴–10⁻²), a tenth or more of Σ p,
so reaching R of Σ p means reading deep into that tail in every encounter, while the tail's true
codes, calibrated in total, fall in few encounters; most lists then find all their codes long
before the cut (3,000 ambulatory patients: recall 0.95 at target 0.9, 39 codes for 4.2 true).
Each head's scores are first recalibrated (Platt scaling on validation: p' = σ(a·logit p + b)).

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

__all__ = ["logit", "sigmoid", "fit_platt", "apply_platt", "expected_recall_cut", "encounter_cuts", "global_k_cuts", "floor_cuts",
           "recall_threshold_curve", "threshold_for", "threshold_cut", "threshold_cuts", "list_cut",
           "cut_metrics", "cut_report", "expected_calibration_error", "precision_curve", "precision_floor"]

# targets a stored threshold curve covers (a service cuts at the nearest one at or above its own)
CURVE_TARGETS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))

_EPS = 1e-6


def logit(p) -> np.ndarray:
    """log(p / (1 - p)) in float64, p clipped to [1e-6, 1 - 1e-6]."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z) -> np.ndarray:
    """1 / (1 + e^-z): `logit`'s inverse, the one expression every score in the zoo goes through."""
    return 1.0 / (1.0 + np.exp(-z))


def fit_platt(scores, labels, steps: int = 200) -> dict:
    """(a, b) of p' = σ(a·logit(p) + b) minimising the log loss over every (row, column)."""
    x = torch.tensor(logit(scores).ravel())
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
    return sigmoid(calibration.get("a", 1.0) * logit(scores) + calibration.get("b", 0.0))


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


def _recall_at_thresholds(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """(candidate thresholds descending, mean per-encounter recall when each encounter's list is
    its codes scored ≥ threshold, at least its top code). Over encounters with a true code.

    A true code is found iff its score reaches t or it is its encounter's top code, so
    recall(t) = Σ_true w·[s ≥ t] + Σ_(top code true) w·[s_top < t], w = 1 / (encounter's true
    codes · encounters): no list needs building, and recall only changes at true codes' scores."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels) > 0.5
    keep = y.any(axis=1)
    p, y = p[keep], y[keep]
    if not len(p):
        return np.zeros(0), np.zeros(0)
    w = 1.0 / (y.sum(axis=1) * len(p))
    rows, cols = np.nonzero(y)
    true_scores, true_w = p[rows, cols], w[rows]
    top = p.argmax(axis=1)
    top_true = y[np.arange(len(p)), top]
    top_scores, top_w = p[np.arange(len(p)), top][top_true], w[top_true]
    candidates = np.unique(true_scores)[::-1]
    # Σ w over true scores ≥ t, and over true top codes scored < t
    order = np.sort(true_scores)
    cum = np.concatenate([[0.0], np.cumsum(true_w[np.argsort(true_scores, kind="stable")])])
    above = cum[-1] - cum[np.searchsorted(order, candidates, side="left")]
    top_order = np.argsort(top_scores, kind="stable")
    top_cum = np.concatenate([[0.0], np.cumsum(top_w[top_order])])
    below_top = top_cum[np.searchsorted(top_scores[top_order], candidates, side="left")]
    return candidates, above + below_top


def recall_threshold_curve(probs, labels, targets=CURVE_TARGETS) -> list[list[float]]:
    """[[target, threshold], …]: for each target recall the highest threshold whose lists reach
    it on these (validation) encounters; targets it cannot reach get the lowest true score."""
    candidates, recall = _recall_at_thresholds(probs, labels)
    if not candidates.size:
        return []
    out = []
    for target in targets:
        reached = np.nonzero(recall >= target - 1e-12)[0]
        i = int(reached[0]) if reached.size else candidates.size - 1
        out.append([float(target), float(candidates[i])])
    return out


def threshold_for(curve: list | None, target: float) -> float | None:
    """The stored threshold of the smallest curve target ≥ `target` (the last one above the
    grid); None without a curve."""
    if not curve:
        return None
    for stored, threshold in curve:
        if stored >= target - 1e-9:
            return float(threshold)
    return float(curve[-1][1])


def threshold_cut(sorted_probs, threshold: float) -> int:
    """The list length for probabilities sorted in descending order: the codes ≥ threshold,
    at least one."""
    p = np.asarray(sorted_probs, dtype=np.float64)
    return 0 if p.size == 0 else max(int((p >= threshold).sum()), 1)


def list_cut(sorted_probs, target_recall: float, rule: str = "per-encounter",
             recall_thresholds: list | None = None) -> tuple[int, float, float | None]:
    """(list length, expected recall Σ_{i≤k} p_i / Σ p_i it reaches, the threshold used or None)
    of one encounter's probabilities sorted in descending order. "per-encounter": the stored
    threshold for the target (the expected-recall rule where the artifact has none);
    "expected-recall": the issue's rule."""
    threshold = threshold_for(recall_thresholds, target_recall) if rule == "per-encounter" else None
    if threshold is None:
        return (*expected_recall_cut(sorted_probs, target_recall), None)
    p = np.asarray(sorted_probs, dtype=np.float64)
    total, k = p.sum(), threshold_cut(p, threshold)
    return k, float(p[:k].sum() / total) if total > 0 else 0.0, threshold


def threshold_cuts(probs, threshold: float) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return np.minimum(np.maximum((p >= threshold).sum(axis=1), 1), p.shape[1]).astype(int)


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
               target_recall: float = 0.9, min_probability: float | None = None,
               recall_thresholds: list | None = None) -> dict:
    """The coder-effort figures of one model's list at one level, on calibrated scores: the
    per-encounter rule (the probability threshold of `recall_thresholds`, fitted on validation;
    the expected-recall rule where there is none), the expected-recall rule, the global-K rule,
    and with `min_probability` the expected-recall rule with that floor; with the calibration
    error before/after."""
    raw = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    calibrated = apply_platt(raw, calibration)
    expected = cut_metrics(calibrated, y, encounter_cuts(calibrated, target_recall))
    threshold = threshold_for(recall_thresholds, target_recall)
    if threshold is None:
        per_encounter = {"rule": "expected-recall", **expected}
    else:
        per_encounter = {"rule": "probability threshold (validation)", "threshold": round(threshold, 6),
                         **cut_metrics(calibrated, y, threshold_cuts(calibrated, threshold))}
    # A model without a stored validation K (a baseline refitted at evaluation) has no global rule.
    global_k_rule = cut_metrics(raw, y, global_k_cuts(raw.shape[0], global_k, raw.shape[1])) if global_k else {}
    floor = None
    if min_probability is not None:
        floor = {"min_probability": min_probability,
                 **cut_metrics(calibrated, y, floor_cuts(calibrated, target_recall, min_probability))}
    return {
        "target_recall": target_recall,
        "per_encounter": per_encounter,
        "expected_recall": expected,
        "per_encounter_floor": floor,
        "global_k": {"k": int(global_k), **global_k_rule} if global_k else None,
        "ece": {"raw": round(expected_calibration_error(raw, y), 5),
                "calibrated": round(expected_calibration_error(calibrated, y), 5)},
    }
