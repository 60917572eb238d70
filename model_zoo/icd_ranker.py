"""Feed-forward multitask ranker over the whole ICD hierarchy and CCS categories.

Input: one row per encounter = multi-hot medications ‖ multi-hot procedures ‖
[age / 90, is_female, is_male]. Output: one logit per label column; the columns are
the concatenation of the label spaces ("heads": chapter, block, 3char, 4char,
billing, ccs), described by `head_sizes` in that order.

Two modes, after the CAC paper (Sec. 2.4):
- "multitask": one trunk shared by every head, one flat output layer (the paper's
  naive multitask network, best for ranking and cheapest to run);
- "per-level": an independent trunk per head (one model per level, in one module so
  it saves, loads and runs like the other).
Defaults are the paper's wide shallow shape: 2 hidden layers of 2048 units, dropout 0.6.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .stored_config import StoredConfig

MODES = ("multitask", "per-level")


@dataclass
class RankerConfig(StoredConfig):
    n_inputs: int
    head_names: list[str]
    head_sizes: list[int]
    hidden: list[int] = field(default_factory=lambda: [2048, 2048])
    dropout: float = 0.6
    input_dropout: float = 0.0
    mode: str = "multitask"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if len(self.head_names) != len(self.head_sizes):
            raise ValueError("head_names and head_sizes differ in length")


def _trunk(n_in: int, hidden: list[int], dropout: float, input_dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    if input_dropout > 0:
        layers.append(nn.Dropout(input_dropout))
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    return nn.Sequential(*layers)


class IcdRanker(nn.Module):
    def __init__(self, config: RankerConfig):
        super().__init__()
        self.config = config
        last = config.hidden[-1] if config.hidden else config.n_inputs
        if config.mode == "multitask":
            self.trunk = _trunk(config.n_inputs, config.hidden, config.dropout, config.input_dropout)
            self.out = nn.Linear(last, sum(config.head_sizes))
        else:
            self.trunks = nn.ModuleList(
                _trunk(config.n_inputs, config.hidden, config.dropout, config.input_dropout)
                for _ in config.head_sizes)
            self.outs = nn.ModuleList(nn.Linear(last, n) for n in config.head_sizes)

    @property
    def n_labels(self) -> int:
        return sum(self.config.head_sizes)

    def head_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, size in zip(self.config.head_names, self.config.head_sizes):
            out[name] = slice(start, start + size)
            start += size
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n_inputs] float → [B, n_labels] logits."""
        if self.config.mode == "multitask":
            return self.out(self.trunk(x))
        return torch.cat([out(trunk(x)) for trunk, out in zip(self.trunks, self.outs)], dim=1)

    def logits_for(self, x: torch.Tensor, columns: list[int]) -> torch.Tensor:
        """[B, len(columns)]: the same as forward(x)[:, columns], computing only those outputs
        in multitask mode (evidence scores many perturbed rows for a few codes)."""
        if self.config.mode != "multitask":
            return self.forward(x)[:, columns]
        index = torch.as_tensor(columns, dtype=torch.long, device=self.out.weight.device)
        out = nn.functional.linear(self.trunk(x), self.out.weight[index], self.out.bias[index])
        if getattr(self.config, "wide", False):          # paths beside the trunk, where present
            out = out + self.wide(x)[:, index]
        if getattr(self.config, "copy_pairs", None):
            out = out + self._copied(x)[:, index]
        return out

    def set_output_prior(self, prevalence: torch.Tensor) -> None:
        """Start every output at its label's log-odds in training: the net begins as the
        frequency ranker and learns what the inputs add (faster, steadier early epochs)."""
        p = prevalence.clamp(1e-4, 1 - 1e-4)
        logit = torch.log(p) - torch.log1p(-p)
        with torch.no_grad():
            if self.config.mode == "multitask":
                self.out.bias.copy_(logit)
            else:
                for out, sl in zip(self.outs, self.head_slices().values()):
                    out.bias.copy_(logit[sl])


def head_weights(head_sizes: list[int], scheme: str = "naive") -> torch.Tensor:
    """Per-column loss weights: "naive" = 1 for every label (the paper's best); "reweighted"
    gives each head the same total weight (the paper's re-weighted multitask variant)."""
    if scheme == "naive":
        return torch.ones(sum(head_sizes))
    if scheme == "reweighted":
        total = sum(head_sizes)
        parts = [torch.full((n,), total / (len(head_sizes) * n)) for n in head_sizes]
        return torch.cat(parts)
    raise ValueError(f"unknown head weighting {scheme!r}")


@torch.no_grad()
def predict_proba(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 1024,
                  device: torch.device | None = None) -> torch.Tensor:
    """Batched sigmoid scores on `device` (cuda when given), returned on the CPU."""
    if device is None:
        tensors = list(model.parameters()) + list(model.buffers())
        device = tensors[0].device if tensors else torch.device("cpu")
    model.eval()
    outs = []
    for start in range(0, len(inputs), batch_size):
        xb = inputs[start:start + batch_size].to(device, non_blocking=True)
        outs.append(torch.sigmoid(model(xb)).float().cpu())
    if not outs:
        return torch.zeros(0, model.n_labels)
    return torch.cat(outs)
