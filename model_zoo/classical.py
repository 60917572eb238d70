"""Classical baselines for code ranking: the frequency floor and one-vs-rest logistic regression.

- `FrequencyRanker`: every encounter gets the same scores, the label frequencies of
  the training set (the CAC paper's "dummy" model). Any useful model must beat it.
- `LogisticRanker`: one logistic regression per label over the same inputs as the
  neural ranker, fitted jointly as a single linear layer (batched, on GPU when
  available) with an L2 penalty; no scikit-learn needed.
Both are `torch.nn.Module`s mapping [B, n_inputs] → [B, n_labels] logits, so they
save, load and evaluate like the neural models.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FrequencyRanker(nn.Module):
    def __init__(self, n_labels: int):
        super().__init__()
        self.register_buffer("log_odds", torch.zeros(n_labels))

    @property
    def n_labels(self) -> int:
        return self.log_odds.numel()

    @classmethod
    def fit(cls, labels: torch.Tensor, weights: torch.Tensor | None = None,
            smoothing: float = 0.5) -> "FrequencyRanker":
        """labels: [N, n_labels] 0/1 (optionally weighted per sample); add-`smoothing`
        keeps unseen labels below seen ones without infinite log-odds."""
        y = labels.float()
        w = torch.ones(len(y)) if weights is None else weights.float()
        positives = (y * w[:, None]).sum(0)
        total = w.sum()
        p = (positives + smoothing) / (total + 2 * smoothing)
        model = cls(y.shape[1])
        model.log_odds.copy_(torch.log(p) - torch.log1p(-p))
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_odds.unsqueeze(0).expand(x.shape[0], -1)


class LogisticRanker(nn.Module):
    def __init__(self, n_inputs: int, n_labels: int):
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_labels)

    @property
    def n_labels(self) -> int:
        return self.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def fit_logistic(inputs: torch.Tensor, labels: torch.Tensor, *, sample_weights: torch.Tensor | None = None,
                 l2: float = 1e-4, epochs: int = 30, lr: float = 0.05, batch_size: int = 512,
                 seed: int = 0, device: torch.device | str | None = None,
                 progress: bool = False, validate=None) -> LogisticRanker:
    """One-vs-rest logistic regression by full-batch-ish Adam on the mean BCE + l2·‖W‖².

    Starts from the label log-odds (intercept only = frequency ranker) so that labels
    too rare to learn from stay ranked by frequency. `validate(model) -> {"score": …}`
    (optional) keeps the best epoch.
    """
    from model_zoo.train import fit, pick_device

    model = LogisticRanker(inputs.shape[1], labels.shape[1])
    prior = FrequencyRanker.fit(labels, sample_weights)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.copy_(prior.log_odds)
    weights = torch.ones(len(labels)) if sample_weights is None else sample_weights.float()
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(inputs), generator=g)
    batches = [{"x": inputs[order[i:i + batch_size]].float(), "y": labels[order[i:i + batch_size]].float(),
                "w": weights[order[i:i + batch_size]]}
               for i in range(0, len(inputs), batch_size)]

    def loss_fn(m: LogisticRanker, batch) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(m(batch["x"]), batch["y"], reduction="none")
        data = (bce.sum(1) * batch["w"]).sum() / batch["w"].sum()
        return data + l2 * m.linear.weight.pow(2).sum()

    fit(model, batches, loss_fn, epochs=epochs, lr=lr, validate=validate,
        select="score" if validate else None, seed=seed, device=pick_device(device),
        progress=progress, desc="logistic")
    return model.cpu()
