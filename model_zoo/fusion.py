"""One calibrated probability per code from several sources (stacking).

Each (encounter, code) pair is described by a few numbers — the structured ranker's logit,
the text coder's logit where a note was read, whether the code was recorded at the previous
visit or at any earlier one, whether it is on the patient's active problem list — and a
logistic regression fitted on validation pairs turns them into one probability. Fitted by
log loss on held-out data, the output is calibrated on average (`model_zoo.rank_calibration`
corrects it per depth of a list); the weights say how much each source is trusted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .recall_cut import sigmoid

__all__ = ["Stacker", "FEATURES"]

# The columns of a pair's feature row, in order.
FEATURES = ("ranker_logit", "text_logit", "text_read", "previous_visit", "earlier_visit", "problem_list")
# Weights stored before `earlier_visit` existed gave the name `problem_list` to "recorded at
# an earlier visit": read that way, they score exactly as they were fitted.
_LEGACY_NAMES = {"earlier_visit": "problem_list"}


@dataclass
class Stacker:
    weights: list[float] = field(default_factory=lambda: [1.0] + [0.0] * (len(FEATURES) - 1))
    bias: float = 0.0
    features: tuple[str, ...] = FEATURES

    @classmethod
    def fit(cls, rows: np.ndarray, labels: np.ndarray, *, l2: float = 1e-4, steps: int = 200,
            max_rows: int = 4_000_000, seed: int = 0) -> "Stacker":
        """Log-loss fit on [M, F] feature rows. Above `max_rows` the negatives are
        subsampled and re-weighted, so the probabilities keep their meaning."""
        x = np.asarray(rows, dtype=np.float64)
        y = np.asarray(labels).ravel() > 0.5
        weight = np.ones(len(y))
        if len(y) > max_rows:
            rng = np.random.default_rng(seed)
            negatives = np.nonzero(~y)[0]
            keep_n = max(max_rows - int(y.sum()), 1)
            chosen = rng.choice(negatives, size=min(keep_n, len(negatives)), replace=False)
            index = np.concatenate([np.nonzero(y)[0], chosen])
            weight = np.ones(len(index))
            weight[int(y.sum()):] = len(negatives) / len(chosen)
            x, y = x[index], y[index]
        xt, yt, wt = torch.tensor(x), torch.tensor(y, dtype=torch.float64), torch.tensor(weight)
        params = torch.zeros(x.shape[1] + 1, dtype=torch.float64)
        params[0] = 1.0                          # start from "trust the ranker"
        params.requires_grad_(True)
        optimiser = torch.optim.LBFGS([params], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            z = xt @ params[:-1] + params[-1]
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, yt, reduction="none") * wt).sum() \
                / wt.sum() + l2 * (params[:-1] ** 2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        values = params.detach().tolist()
        return cls([round(v, 6) for v in values[:-1]], round(values[-1], 6), tuple(FEATURES))

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return sigmoid(np.asarray(rows, dtype=np.float64) @ np.asarray(self.weights) + self.bias)

    def to_dict(self) -> dict:
        return {"weights": dict(zip(self.features, self.weights)), "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict) -> "Stacker":
        weights = dict(data.get("weights") or {})
        if not any(new in weights for new in _LEGACY_NAMES):
            for new, old in _LEGACY_NAMES.items():
                if old in weights:
                    weights[new], weights[old] = weights[old], 0.0
        missing = [f for f in FEATURES if f not in weights]
        if missing:
            raise ValueError(f"fusion weights lack {missing}")
        return cls([float(weights[f]) for f in FEATURES], float(data.get("bias", 0.0)), tuple(FEATURES))
