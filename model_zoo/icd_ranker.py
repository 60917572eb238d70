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

Beside the hidden layers, a direct linear path from every input to every output
("wide & deep", `wide=True`): much of a visit's coding is "this code again" — a code of
the last visit or of the problem list — an identity a linear model holds exactly and a
dropout-regularised trunk must squeeze through its bottleneck. The wide path starts at
zero, so the net begins as the frequency ranker like before; it is trained with its own
learning rate and L2 penalty (`parameter_groups`, `wide_penalty`).

And a copy path (`copy_pairs`): for each record source (earlier visits' codes, the
problem list), a fixed map from an input column (a code in the record) to the output
columns of the same code at every level; its value is scaled by one learned weight per
head and source plus a small per-label deviation. The wide path must learn "E11.9 in the
record → E11.9 again" label by label from that label's few examples; the copy path learns
it once for every code, rare ones included, and learns how little it holds where stays
share few codes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .row_products import KeptTranspose, sliced_product, sparse_product
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
    wide: bool = True
    copy_pairs: list[int] = field(default_factory=list)   # (input, label) pairs per record source

    # artifacts written before the wide path had none
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"wide": False}

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if len(self.head_names) != len(self.head_sizes):
            raise ValueError("head_names and head_sizes differ in length")


class SparseInputLinear(nn.Module):
    """x @ W without a bias, W [n_in, n_out], computed over x's non-zero entries only: the
    ranker's inputs are multi-hot rows with a few dozen of thousands of columns set, and the
    wide path's W is the model's largest matrix (about 3 × faster than a dense product on CPU)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_product(x, self.weight)


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
        if config.wide:
            self.wide = SparseInputLinear(config.n_inputs, sum(config.head_sizes))
        n_labels, n_sources = sum(config.head_sizes), len(config.copy_pairs)
        if n_sources:
            for k, n in enumerate(config.copy_pairs):
                self.register_buffer(f"copy_inputs_{k}", torch.zeros(n, dtype=torch.long))
                self.register_buffer(f"copy_labels_{k}", torch.zeros(n, dtype=torch.long))
            heads = torch.arange(len(config.head_sizes)).repeat_interleave(torch.tensor(config.head_sizes))
            self.register_buffer("label_head", heads, persistent=False)
            self.copy_scale = nn.Parameter(torch.ones(n_sources, len(config.head_sizes)))
            self.copy_delta = nn.Parameter(torch.zeros(n_sources, n_labels))
        self._pairs_by_label: dict = {}        # source → its pairs grouped by label (evidence)
        self._pairs_by_slice: dict = {}        # (source, slice) → its pairs in the slice (one head)
        self._first_by_input = KeptTranspose()    # inference: the first layer's weight as [inputs, width]
        self._out_by_input = KeptTranspose()      # and the output layer's as [width, labels]

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
            deep = self.out(self.trunk(x))
        else:
            deep = torch.cat([out(trunk(x)) for trunk, out in zip(self.trunks, self.outs)], dim=1)
        if self.config.wide:
            deep = deep + self.wide(x)
        return deep + self._copied(x) if self.config.copy_pairs else deep

    def _copied(self, x: torch.Tensor, columns: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Σ_source (scale[source, head] + delta[source, label]) · (the label's code in that
        part of the record: its input value, the largest where several codes roll up to it).
        With `columns` (label columns, or a slice of them): only those, the same values as
        `_copied(x)[:, columns]` from only the pairs that reach them (evidence asks for a
        handful of the thousands, a suggestion list for one head)."""
        back = None
        if isinstance(columns, slice):
            width = len(range(self.n_labels)[columns])
        elif columns is not None:
            columns, back = torch.unique(columns, return_inverse=True)
            width = len(columns)
        else:
            width = self.n_labels
        out = torch.zeros(x.shape[0], width, device=x.device, dtype=x.dtype)
        for k in range(len(self.config.copy_pairs)):
            inputs, labels = getattr(self, f"copy_inputs_{k}"), getattr(self, f"copy_labels_{k}")
            if not len(inputs):
                continue
            if columns is not None:      # the same sums as the full row's, for these labels only
                pairs = self._pairs_in if isinstance(columns, slice) else self._pairs_reaching
                inputs, labels = pairs(k, columns)
            present = torch.zeros_like(out).scatter_reduce(
                1, labels.expand(x.shape[0], -1), x[:, inputs], reduce="amax")
            out = out + present * self._copy_weight(k, columns)
        return out if back is None else out[:, back]

    def _copy_weight(self, k: int, columns: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Source k's weight on every label (or on `columns`): its head's shared scale plus the
        label's own delta."""
        if columns is None:
            return self.copy_scale[k][self.label_head] + self.copy_delta[k]
        return self.copy_scale[k][self.label_head[columns]] + self.copy_delta[k][columns]

    @staticmethod
    def _pairs_version(inputs: torch.Tensor, labels: torch.Tensor) -> tuple:
        """Changes whenever the pairs are rewritten or moved: what the kept groupings check."""
        return inputs._version, labels._version, inputs.data_ptr(), labels.data_ptr()

    def _pairs_in(self, k: int, columns: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Source k's pairs whose label lies in the slice `columns`: (input columns, the label's
        place in the slice), kept per slice while the pairs are unchanged."""
        inputs, labels = getattr(self, f"copy_inputs_{k}"), getattr(self, f"copy_labels_{k}")
        start, stop, step = columns.indices(self.n_labels)
        key = (k, start, stop, step)
        version = self._pairs_version(inputs, labels)
        cached = self._pairs_by_slice.get(key)
        if cached is None or cached[0] != version:
            inside = (labels >= start) & (labels < stop) & ((labels - start) % step == 0)
            cached = self._pairs_by_slice[key] = (version, inputs[inside], (labels[inside] - start) // step)
        return cached[1], cached[2]

    def _pairs_reaching(self, k: int, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Source k's pairs whose label is one of `columns` (distinct): (input columns, the
        label's place among `columns`), from the pairs grouped by label once per process."""
        inputs, labels = getattr(self, f"copy_inputs_{k}"), getattr(self, f"copy_labels_{k}")
        key = self._pairs_version(inputs, labels)
        cached = self._pairs_by_label.get(k)
        if cached is None or cached[0] != key:
            order = torch.argsort(labels, stable=True)
            counts = torch.bincount(labels, minlength=self.n_labels).tolist()
            starts = [0]
            for n in counts[:-1]:
                starts.append(starts[-1] + n)
            cached = self._pairs_by_label[k] = (key, inputs[order], starts, counts)
        _, by_label, starts, counts = cached
        wanted = columns.tolist()
        found = [by_label[starts[c]:starts[c] + counts[c]] for c in wanted]
        places = torch.repeat_interleave(torch.arange(len(wanted), device=inputs.device),
                                         torch.tensor([counts[c] for c in wanted], device=inputs.device))
        return (torch.cat(found) if found else inputs[:0]), places

    def set_copy_pairs(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """The (input columns, label columns) of each record source, as `copy_pairs` sized them."""
        for k, (inputs, labels) in enumerate(pairs):
            getattr(self, f"copy_inputs_{k}").copy_(inputs)
            getattr(self, f"copy_labels_{k}").copy_(labels)

    def _linear_parameters(self) -> list[nn.Parameter]:
        out = list(self.wide.parameters()) if self.config.wide else []
        return out + ([self.copy_scale, self.copy_delta] if self.config.copy_pairs else [])

    def parameter_groups(self, lr: float, wide_lr: float) -> list[dict]:
        """Optimizer groups: the wide and copy paths at `wide_lr` (a linear model needs far
        larger steps than the trunk to move in the same epochs), everything else at `lr`."""
        linear = self._linear_parameters()
        if not linear:
            return [{"params": list(self.parameters()), "lr": lr}]
        ids = {id(p) for p in linear}
        return [{"params": [p for p in self.parameters() if id(p) not in ids], "lr": lr},
                {"params": linear, "lr": wide_lr}]

    def wide_penalty(self, wide: bool = True) -> torch.Tensor:
        """‖W_wide‖² + ‖copy deviations‖²: the logistic peer's L2 penalty, and per-label copy
        weights kept near their head's shared one. `wide=False` leaves W_wide out (training
        adds its gradient by a hook, `losses.l2_by_gradient_hook`)."""
        total = torch.zeros((), device=next(self.parameters()).device)
        if self.config.wide and wide:
            total = total + self.wide.weight.pow(2).sum()
        if self.config.copy_pairs:
            total = total + self.copy_delta.pow(2).sum()
        return total

    def logits_for(self, x: torch.Tensor, columns: list[int] | slice) -> torch.Tensor:
        """[B, len(columns)]: the same as forward(x)[:, columns], computing only those outputs
        in multitask mode (evidence scores many perturbed rows for a few codes; a suggestion
        list needs one head, a slice)."""
        if self.config.mode != "multitask":
            return self.forward(x)[:, columns]
        return self._selected_outputs(self._trunk_output(x), x, self._column_index(columns))

    def _trunk_output(self, x: torch.Tensor) -> torch.Tensor:
        """trunk(x); out of training, its first layer reads only the weights of x's non-zero
        inputs (a visit sets a few dozen of the bundled ranker's 1,804)."""
        layers = self._inference_layers()
        if self.training or not layers or not isinstance(layers[0], nn.Linear):
            return self.trunk(x)
        first = layers[0]
        hidden = sparse_product(x, self._first_by_input.of(first.weight), first.bias)
        for layer in layers[1:]:
            hidden = layer(hidden)
        return hidden

    def _inference_layers(self) -> list[nn.Module]:
        """The trunk's layers without its dropouts (multitask mode), as they run out of training."""
        if self.config.mode != "multitask":
            return []
        return [m for m in self.trunk if not isinstance(m, nn.Dropout)]

    def occlusion_logits(self, x: torch.Tensor, features: list[int], columns: list[int]) -> torch.Tensor:
        """[1 + len(features), len(columns)]: `logits_for` of the row x, then of x with each of
        `features` switched off in turn. The first layer and the paths beside the trunk are
        linear in x or read single inputs, so switching an input off is computed from the full
        row: its weighted column taken from the first layer's pre-activation, its pairs dropped
        from the copy path. One input row, never one per feature (equal to the row-by-row pass
        up to float rounding)."""
        from model_zoo.attribution import occluded_rows

        layers = self._inference_layers()
        if not layers or not isinstance(layers[0], nn.Linear):
            return self.logits_for(occluded_rows(x, features), columns)
        first = layers[0]
        by_input = self._first_by_input.of(first.weight)
        taken = torch.as_tensor(features, dtype=torch.long, device=x.device)
        values = x[taken].unsqueeze(1)
        full = sparse_product(x.unsqueeze(0), by_input, first.bias)
        hidden = torch.cat([full, full - values * by_input[taken]])
        for layer in layers[1:]:
            hidden = layer(hidden)
        index = self._column_index(columns)
        out = nn.functional.linear(hidden, self.out.weight[index], self.out.bias[index])
        if getattr(self.config, "wide", False):
            wide = self.wide.weight[:, index]
            whole = x.unsqueeze(0) @ wide
            out = out + torch.cat([whole, whole - values * wide[taken]])
        if getattr(self.config, "copy_pairs", None):
            out = out + self._copied_without_each(x, taken, index)
        return out

    def _copied_without_each(self, x: torch.Tensor, taken: torch.Tensor, columns: torch.Tensor | slice
                             ) -> torch.Tensor:
        """[1 + len(taken), len(columns)]: `_copied` of the row x, then of x without each input
        of `taken` in turn, from the values of only the pairs reaching `columns`."""
        if isinstance(columns, slice):
            columns = torch.arange(self.n_labels, device=x.device)[columns]
        columns, back = torch.unique(columns, return_inverse=True)
        n_rows = len(taken) + 1
        out = torch.zeros(n_rows, len(columns), device=x.device, dtype=x.dtype)
        for k in range(len(self.config.copy_pairs)):
            if not len(getattr(self, f"copy_inputs_{k}")):
                continue
            inputs, places = self._pairs_reaching(k, columns)
            values = x[inputs].expand(n_rows, -1).clone()
            values[1:].masked_fill_(inputs.unsqueeze(0) == taken.unsqueeze(1), 0)
            present = torch.zeros_like(out).scatter_reduce(1, places.expand(n_rows, -1), values, reduce="amax")
            out = out + present * self._copy_weight(k, columns)
        return out[:, back]

    def _column_index(self, columns: list[int] | slice) -> torch.Tensor | slice:
        if isinstance(columns, slice):      # a view of the weights' rows, no copy
            return columns
        return torch.as_tensor(columns, dtype=torch.long, device=self.out.weight.device)

    def _selected_outputs(self, hidden: torch.Tensor, x: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
        """The `index` outputs from the trunk's output `hidden` and, beside it, the paths on x itself."""
        if isinstance(index, slice):       # one head: the [width, labels] layout reads it faster
            out = sliced_product(hidden, self._out_by_input.of(self.out.weight), self.out.bias, index)
        else:                              # a few codes: their rows of the weight
            out = nn.functional.linear(hidden, self.out.weight[index], self.out.bias[index])
        if getattr(self.config, "wide", False):          # paths beside the trunk, where present
            out = out + self.wide(x)[:, index]             # the non-zero inputs' rows of every label
        if getattr(self.config, "copy_pairs", None):
            out = out + self._copied(x, index)
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
