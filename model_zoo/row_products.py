"""Products of a few input rows with a layer's weight, reading as little of the weight as they can.

A hook call multiplies one input row by the models' weights, several MB of them, and its
own work evicts them from the CPU caches between calls, so each product's time is the time
to read its weight from memory. Two layouts read less:

* a multi-hot or bag-of-words row has a few dozen non-zero entries out of thousands: with
  the weight kept as [inputs, outputs], the product reads only those inputs' rows
  (`sparse_product`);
* a product over a slice of a layer's outputs (one head) reads the weight as [inputs,
  outputs] too: the BLAS kernel for that layout streams it about twice as fast as the
  [outputs, inputs] one `nn.Linear` keeps (measured on the 2-core machine, cold caches).

`KeptTranspose` keeps such a transposed copy until the weight changes.
"""
from __future__ import annotations

import torch
from torch import nn


class KeptTranspose:
    """`weight.t().contiguous()` of one parameter, made on first use and kept while the
    parameter is unchanged (same storage, same version): inference reads it, training
    changes the weight and the next call makes a new one."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: tuple | None = None      # (key, transpose): one attribute, replaced whole

    def of(self, weight: torch.Tensor) -> torch.Tensor:
        key = (weight.data_ptr(), weight._version, weight.device)
        kept = self._kept
        if kept is None or kept[0] != key:
            kept = (key, weight.detach().t().contiguous())
            self._kept = kept
        return kept[1]


def sparse_product(x: torch.Tensor, weight_by_input: torch.Tensor, bias: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """x @ weight_by_input (+ bias) for x [B, inputs], weight_by_input [inputs, outputs],
    summed over x's non-zero entries only."""
    rows, cols = x.nonzero(as_tuple=True)
    offsets = torch.searchsorted(rows, torch.arange(x.shape[0], device=x.device))
    out = nn.functional.embedding_bag(cols, weight_by_input, offsets, mode="sum",
                                      per_sample_weights=x[rows, cols])
    return out if bias is None else out + bias


def sliced_product(x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None,
                   columns: slice) -> torch.Tensor:
    """nn.functional.linear(x, weight[columns], bias[columns]) from the transposed weight
    [inputs, outputs]: a view of its columns, no copy."""
    if bias is None:
        return x @ weight_t[:, columns]
    return torch.addmm(bias[columns], x, weight_t[:, columns])


__all__ = ["KeptTranspose", "sparse_product", "sliced_product"]
