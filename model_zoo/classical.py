"""Classical baselines for code ranking: the frequency floor and one-vs-rest logistic regression.

- `FrequencyRanker`: every encounter gets the same scores, the label frequencies of
  the training set (the CAC paper's "dummy" model). Any useful model must beat it.
- `LogisticRanker`: one logistic regression per label over the same inputs as the
  neural ranker, fitted jointly as a single linear layer (batched, on GPU when
  available) with an L2 penalty; no scikit-learn needed. Fitted over the inputs' non-zero
  entries only (`_SparseLogistic`): the rows are multi-hot with a few dozen of thousands of
  columns set, and a dense [batch, inputs] × [inputs, labels] product each step made the
  peer the slowest part of a ranker's training.
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


class _SparseLogistic(nn.Module):
    """The logistic regression as it is trained: W [n_inputs, n_labels] applied to x's
    non-zero entries (forward and gradient cost nnz × labels instead of batch × inputs ×
    labels); copied into a `LogisticRanker` afterwards, so artifacts keep their layout."""

    def __init__(self, n_inputs: int, n_labels: int):
        super().__init__()
        from .icd_ranker import SparseInputLinear

        self.wide = SparseInputLinear(n_inputs, n_labels)
        self.bias = nn.Parameter(torch.zeros(n_labels))

    @property
    def n_labels(self) -> int:
        return self.bias.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wide(x) + self.bias

    def to_ranker(self) -> LogisticRanker:
        model = LogisticRanker(*self.wide.weight.shape)
        with torch.no_grad():
            model.linear.weight.copy_(self.wide.weight.detach().t())
            model.linear.bias.copy_(self.bias.detach())
        return model


def fit_logistic(inputs: torch.Tensor, labels: torch.Tensor, *, sample_weights: torch.Tensor | None = None,
                 l2: float = 1e-4, epochs: int = 30, lr: float = 0.05, batch_size: int = 512,
                 seed: int = 0, device: torch.device | str | None = None,
                 progress: bool = False, validate=None) -> LogisticRanker:
    """One-vs-rest logistic regression by mini-batch Adam on the mean BCE + l2·‖W‖².

    Starts from the label log-odds (intercept only = frequency ranker) so that labels
    too rare to learn from stay ranked by frequency. `validate(model) -> {"score": …}`
    (optional) keeps the best epoch.
    """
    from model_zoo.losses import l2_by_gradient_hook
    from model_zoo.train import fit, pick_device

    model = _SparseLogistic(inputs.shape[1], labels.shape[1])
    prior = FrequencyRanker.fit(labels, sample_weights)
    with torch.no_grad():
        model.bias.copy_(prior.log_odds)
    weights = torch.ones(len(labels)) if sample_weights is None else sample_weights.float()
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(inputs), generator=g)
    batches = [{"x": inputs[order[i:i + batch_size]].float(), "y": labels[order[i:i + batch_size]].float(),
                "w": weights[order[i:i + batch_size]]}
               for i in range(0, len(inputs), batch_size)]

    hook = l2_by_gradient_hook(model.wide.weight, l2)   # the reported loss is the data term

    def loss_fn(m: _SparseLogistic, batch) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(m(batch["x"]), batch["y"], reduction="none")
        return (bce.sum(1) * batch["w"]).sum() / batch["w"].sum()

    fit(model, batches, loss_fn, epochs=epochs, lr=lr, validate=validate,
        select="score" if validate else None, seed=seed, device=pick_device(device),
        progress=progress, desc="logistic")
    hook.remove()
    return model.cpu().to_ranker()
