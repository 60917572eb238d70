"""Figures over a label space: per-head ranking metrics, the validation score models are
selected on, and the per-stratum RE@R list cut-offs."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

SELECT_METRICS = ("ndcg", "auprc", "f1")


def head_metrics(scores: torch.Tensor, labels: torch.Tensor, slices: dict[str, slice],
                 thresholds: dict[str, float] | None = None) -> dict[str, dict[str, float | None]]:
    from model_zoo.metrics.ranking import ranking_summary

    s, y = to_numpy(scores), to_numpy(labels)
    out = {}
    for head, sl in slices.items():
        t = (thresholds or {}).get(head, 0.5)
        out[head] = ranking_summary(s[:, sl], y[:, sl], threshold=t)
    return out


def selection_score(scores: torch.Tensor, labels: torch.Tensor, slices: dict[str, slice],
                    metric: str) -> float:
    """Validation figure for model selection: the mean over heads of NDCG, μAUPRC or μF1 (at 0.5)."""
    from model_zoo.metrics import ranking as rk

    s, y = to_numpy(scores), to_numpy(labels)
    fn = {"ndcg": rk.ndcg, "auprc": rk.auprc_micro, "f1": lambda a, b: rk.f1_micro(a, b, 0.5)}[metric]
    values = [fn(s[:, sl], y[:, sl]) for sl in slices.values() if sl.stop > sl.start]
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else 0.0


def to_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def cutoffs_for(scores: torch.Tensor, labels: torch.Tensor, strata: Sequence[int],
                slices: dict[str, slice], target_recall: float = 0.9) -> dict[str, dict]:
    from model_zoo import recall_cut
    from model_zoo.thresholds import stratified_recall_cutoffs

    s, y = to_numpy(scores), to_numpy(labels)
    out = {}
    for head, sl in slices.items():
        info = stratified_recall_cutoffs(s[:, sl], y[:, sl], list(strata), target_recall)
        # What the per-encounter cut and the write-back floor need (suggest.coding).
        info["calibration"] = recall_cut.fit_platt(s[:, sl], y[:, sl])
        calibrated = recall_cut.apply_platt(s[:, sl], info["calibration"])
        info["precision_curve"] = recall_cut.precision_curve(calibrated, y[:, sl])
        info["recall_thresholds"] = recall_cut.recall_threshold_curve(calibrated, y[:, sl])
        out[head] = info
    return out

