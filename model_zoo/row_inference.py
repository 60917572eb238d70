"""One input row through a trained ranker, TF-IDF coder or MICRON model, in numpy: what a hook call runs on the CPU.

A hook call scores a single visit. For one row the models' arithmetic is small (well under a
million multiply-adds) and torch's fixed cost per operation — parsing its arguments, dispatch,
a new tensor object, some 5–10 µs — was most of their time: in a sampling profile of the coding
call, torch's frames held 46% of the samples, its matrix kernels 2%. A numpy operation costs
under a microsecond of the same overhead.

`RankerRow`, `TfidfRow` and `MicronRow` read the same weights (numpy views of the torch
parameters and of the transposes the models keep) and compute what `IcdRanker.logits_for` /
`occlusion_logits`, `TfidfCoder.logits_for` and MICRON's one-visit update (`encode_visit`,
`net_med`) compute, equal up to float rounding (tests/test_row_inference.py). `for_ranker`,
`for_tfidf` and `for_micron` give None where they do not apply (a model on a GPU, in training,
a per-level ranker, another text coder): torch runs those, and every batch, as before. The
medication call spent a fifth of its samples in torch for MICRON's few small products.
"""
from __future__ import annotations

import weakref

import numpy as np
import torch
from torch import nn

from .recall_cut import sigmoid

__all__ = ["RankerRow", "TfidfRow", "MicronRow", "for_ranker", "for_tfidf", "for_micron", "sigmoid",
           "single_thread_blas"]

_kept: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def single_thread_blas() -> None:
    """Run numpy's matrix products on the calling thread. A row's products are too small to
    share: with the default (a thread per core) OpenBLAS's handing work to its threads and
    waiting for them took twice the products' own time in a profile of the coding call.
    Fixed at one thread, every process also sums in the same order: the same bits everywhere."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def _versions(tensors: list[torch.Tensor]) -> tuple:
    return tuple((t.data_ptr(), t._version) for t in tensors)


def _kept_for(module: nn.Module, build):
    """`build(module)`, kept while none of the module's weights is rewritten in place or moved
    (None on a GPU); None in training."""
    if module.training:
        return None
    kept = _kept.get(module)
    if kept is not None and kept[1] == _versions(kept[0]):
        return kept[2]
    tensors = [*module.parameters(), *module.buffers()]
    row = build(module) if all(t.device.type == "cpu" for t in tensors) else None
    _kept[module] = (tensors, _versions(tensors), row)
    return row


def for_ranker(ranker: nn.Module) -> "RankerRow | None":
    """The numpy one-row path of an `IcdRanker` on the CPU out of training, or None."""
    return _kept_for(ranker, RankerRow.build)


def for_tfidf(coder: nn.Module) -> "TfidfRow | None":
    """The numpy one-row path of a `TfidfCoder` on the CPU out of training, or None."""
    from .tfidf_coder import TfidfCoder

    return _kept_for(coder, TfidfRow) if isinstance(coder, TfidfCoder) else None


def for_micron(model: nn.Module) -> "MicronRow | None":
    """The numpy one-visit path of a `Micron` model on the CPU out of training, or None."""
    return _kept_for(model, MicronRow)


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _relu(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0, out=h)


def _as_index(columns) -> np.ndarray | slice:
    return columns if isinstance(columns, slice) else np.asarray(columns, dtype=np.intp)


class _CopySource:
    """One record source's (input column → label columns) pairs as a table: row i lists the
    labels input i reaches, padded with the spare label n_labels; and the source's weight on
    every label (its head's shared scale plus the label's own delta)."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray, weight: np.ndarray, n_inputs: int) -> None:
        order = np.argsort(inputs, kind="stable")
        inputs, labels = inputs[order], labels[order]
        starts = np.searchsorted(inputs, np.arange(n_inputs + 1))
        self.width = max(1, int(np.diff(starts).max(initial=0)))
        self.table = np.full((n_inputs, self.width), len(weight), dtype=np.intp)     # the spare label
        slot = np.arange(len(inputs)) - starts[inputs]        # each pair's place in its input's row
        self.table[inputs, slot] = labels
        self.weight = weight

    def present(self, x: np.ndarray, nz: np.ndarray) -> np.ndarray:
        """[n_labels + 1]: for each label the largest value among the row's inputs paired with
        it (0 where none is; the last entry is the padding's)."""
        out = np.zeros(len(self.weight) + 1, dtype=x.dtype)
        np.maximum.at(out, self.table[nz].ravel(), np.repeat(x[nz], self.width))
        return out


class RankerRow:
    """A multitask `IcdRanker`'s outputs for one input row (float32, like the model)."""

    def __init__(self, first_by_input, first_bias, later, out_weight, out_by_input, out_bias, wide,
                 copies) -> None:
        self.first_by_input, self.first_bias = first_by_input, first_bias
        self.later = later                  # ("linear", weight [in, out], bias) or ("relu",)
        self.out_weight, self.out_by_input, self.out_bias = out_weight, out_by_input, out_bias
        self.wide = wide                    # [inputs, labels] or None
        self.copies = copies                # _CopySource per record source with pairs
        self.n_labels = len(out_bias)

    @classmethod
    def build(cls, ranker) -> "RankerRow | None":
        layers = ranker._inference_layers()
        if not layers or not isinstance(layers[0], nn.Linear) or not all(
                isinstance(m, (nn.Linear, nn.ReLU)) for m in layers):
            return None
        first = layers[0]
        later = [("linear", _array(m.weight).T, _array(m.bias)) if isinstance(m, nn.Linear) else ("relu",)
                 for m in layers[1:]]
        config = ranker.config
        copies = []
        for k in range(len(config.copy_pairs)):
            inputs = _array(getattr(ranker, f"copy_inputs_{k}"))
            if len(inputs):
                weight = _array(ranker._copy_weight(k))
                copies.append(_CopySource(inputs, _array(getattr(ranker, f"copy_labels_{k}")), weight,
                                          config.n_inputs))
        return cls(_array(ranker._first_by_input.of(first.weight)), _array(first.bias), later,
                   _array(ranker.out.weight), _array(ranker._out_by_input.of(ranker.out.weight)),
                   _array(ranker.out.bias), _array(ranker.wide.weight) if config.wide else None,
                   copies)

    def _hidden(self, h: np.ndarray) -> np.ndarray:
        """The trunk after its first layer's output `h` ([width] or [rows, width])."""
        for layer in self.later:
            h = _relu(h) if layer[0] == "relu" else h @ layer[1] + layer[2]
        return h

    def logits_for(self, x: np.ndarray, columns) -> np.ndarray:
        """[len(columns)] logits of the row x ([n_inputs]) for `columns` (label columns or a slice)."""
        nz = np.flatnonzero(x)
        values = x[nz]
        hidden = self._hidden(values @ self.first_by_input[nz] + self.first_bias)
        index = _as_index(columns)
        if isinstance(index, slice):      # one head: the [width, labels] layout reads it faster
            out = hidden @ self.out_by_input[:, index] + self.out_bias[index]
        else:
            out = self.out_weight[index] @ hidden + self.out_bias[index]
        if self.wide is not None:
            out += values @ (self.wide[nz, index] if isinstance(index, slice) else self.wide[np.ix_(nz, index)])
        if self.copies:
            out += self._copied(x, nz, index)
        return out

    def occlusion_logits(self, x: np.ndarray, features, columns) -> np.ndarray:
        """[1 + len(features), len(columns)]: `logits_for` of x, then of x with each of `features`
        switched off in turn, from the full row (as `IcdRanker.occlusion_logits`)."""
        nz = np.flatnonzero(x)
        taken = np.asarray(features, dtype=np.intp)
        values = x[taken][:, None]
        full = x[nz] @ self.first_by_input[nz] + self.first_bias
        hidden = self._hidden(np.concatenate([full[None], full - values * self.first_by_input[taken]]))
        index = np.asarray(columns, dtype=np.intp)
        out = hidden @ self.out_weight[index].T + self.out_bias[index]
        if self.wide is not None:
            whole = x[nz] @ self.wide[np.ix_(nz, index)]
            out += np.concatenate([whole[None], whole - values * self.wide[np.ix_(taken, index)]])
        if self.copies:
            out += self._copied_without_each(x, nz, index, taken)
        return out

    def _copied(self, x: np.ndarray, nz: np.ndarray, columns) -> np.ndarray:
        """[len(columns)]: Σ_source weight · (the largest value among the row's inputs paired
        with each of `columns`); x's non-zero inputs are `nz` (the others add nothing to a
        maximum over non-negative values)."""
        out = None
        for source in self.copies:
            part = source.present(x, nz)[:-1][columns] * source.weight[columns]
            out = part if out is None else out + part
        return out

    def _copied_without_each(self, x: np.ndarray, nz: np.ndarray, columns: np.ndarray,
                             taken: np.ndarray) -> np.ndarray:
        """[1 + len(taken), len(columns)]: `_copied` of x, then of x without each input of `taken`."""
        n_rows, n_columns = len(taken) + 1, len(columns)
        place = np.full(self.n_labels + 1, n_columns, dtype=np.intp)   # n_columns: not asked for
        place[columns] = np.arange(n_columns)     # a repeated column: its last place, copied back below
        out = np.zeros((n_rows, n_columns), dtype=x.dtype)
        for source in self.copies:
            where = place[source.table[nz]].ravel()
            wanted = where < n_columns
            where, inputs = where[wanted], np.repeat(nz, source.width)[wanted]
            values = np.repeat(x[inputs][None, :], n_rows, axis=0)
            values[1:][inputs[None, :] == taken[:, None]] = 0
            present = np.zeros((n_rows, n_columns), dtype=x.dtype)
            np.maximum.at(present, (np.repeat(np.arange(n_rows), len(where)), np.tile(where, n_rows)),
                          values.ravel())
            out += present * source.weight[columns]
        return out[:, place[columns]]


class TfidfRow:
    """A `TfidfCoder`'s logits for one note (its token ids; 0 pads, 1 is out of vocabulary)."""

    def __init__(self, coder) -> None:
        from .tfidf_coder import PAD, LowRankLinear

        self.pad = PAD
        self.idf = _array(coder.embedding.weight)[:, 0]
        layer = coder.linear
        if isinstance(layer, LowRankLinear):
            self.by_token = _array(coder._by_token.of(layer.down.weight))      # [vocab, rank]
            self.up_by_rank = _array(coder._up_by_rank.of(layer.up.weight))     # [rank, labels]
            self.bias = _array(layer.up.bias)
        else:
            self.by_token = _array(coder._by_token.of(layer.weight))            # [vocab, labels]
            self.up_by_rank = None
            self.bias = _array(layer.bias)

    def logits_for(self, ids, columns: slice) -> np.ndarray:
        """[columns' width]: the note's L2-normalised TF-IDF row times the weights."""
        ids = np.asarray(ids, dtype=np.intp)
        ids = ids[ids != self.pad]
        tokens, where = np.unique(ids, return_inverse=True)
        tf_idf = np.bincount(where, weights=self.idf[ids], minlength=len(tokens)).astype(self.idf.dtype)
        tf_idf /= max(float(np.sqrt(tf_idf @ tf_idf)), 1e-6)
        if self.up_by_rank is None:
            return tf_idf @ self.by_token[tokens, columns] + self.bias[columns]
        return (tf_idf @ self.by_token[tokens]) @ self.up_by_rank[:, columns] + self.bias[columns]


class MicronRow:
    """A MICRON model's health vector of one visit and its prescription network (float32)."""

    def __init__(self, model) -> None:
        encoder = model.encoder
        self.dx, self.proc = _array(encoder.dx_embedding.weight), _array(encoder.proc_embedding.weight)
        self.health_weight, self.health_bias = _array(encoder.health.weight).T, _array(encoder.health.bias)
        first, last = model.net_med[0], model.net_med[-1]
        self.hidden_weight, self.hidden_bias = _array(first.weight).T, _array(first.bias)
        self.out_weight, self.out_bias = _array(last.weight).T, _array(last.bias)

    def health(self, dx, proc) -> np.ndarray:
        """h of one visit from its diagnosis and procedure indices (Eq. 1-2)."""
        d = self.dx[sorted(set(dx))].sum(0)
        p = self.proc[sorted(set(proc))].sum(0)
        return np.concatenate([d, p]) @ self.health_weight + self.health_bias

    def net_med(self, h: np.ndarray) -> np.ndarray:
        """NET_med(h): medication logits."""
        return _relu(h @ self.hidden_weight + self.hidden_bias) @ self.out_weight + self.out_bias
