"""Why a code was suggested: per-code evidence over a model's inputs.

- `occlusion`: for multi-hot inputs (medications, procedures), the drop in a label's
  probability when one active input is switched off. Exact, needs one forward pass
  of (active inputs + 1) rows, and reads directly as "without metformin this
  code's score falls by 0.31".
- `gradient_x_input`: the first-order version of the same for any differentiable
  model (one backward pass per label); used for dense inputs.
- `token_attribution` + `top_spans(_rows)`: gradient × embedding for a text coder, summed
  over the embedding dimension, then the best-scoring windows of the note.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch


@torch.no_grad()
def occlusion(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
              labels: Sequence[int], features: Sequence[int] | None = None) -> tuple[torch.Tensor, list[int]]:
    """x: one input row [n_inputs]; forward: [B, n_inputs] → [B, n_labels] logits. (A model that
    computes only some outputs feeds `occluded_rows` to them and `occlusion_deltas` the result.)

    Returns (delta [len(labels), len(features)], features): probability of each label
    with the full input minus with that feature zeroed. `features` defaults to the
    non-zero entries of x.
    """
    features = active_features(x) if features is None else list(features)
    logits = forward(occluded_rows(x, features))
    return occlusion_deltas(logits[:, list(labels)]), features


def active_features(x: torch.Tensor) -> list[int]:
    return torch.nonzero(x != 0).flatten().tolist()


def occluded_rows(x: torch.Tensor, features: Sequence[int]) -> torch.Tensor:
    """[1 + F, n_inputs]: x, then x without each of `features` in turn."""
    rows = x.unsqueeze(0).repeat(len(features) + 1, 1)
    if features:
        rows[torch.arange(1, len(features) + 1), torch.as_tensor(list(features), dtype=torch.long)] = 0
    return rows


def occlusion_deltas(logits: torch.Tensor) -> torch.Tensor:
    """[1 + F, L] logits of the occluded rows → [L, F] drops in probability."""
    probs = torch.sigmoid(logits)
    return (probs[0:1] - probs[1:]).T.cpu()


def gradient_x_input(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     labels: Sequence[int]) -> torch.Tensor:
    """[len(labels), n_inputs]: d logit_l / d x · x for one input row."""
    out = []
    for label in labels:
        xi = x.detach().clone().unsqueeze(0).requires_grad_(True)
        logit = forward(xi)[0, label]
        (grad,) = torch.autograd.grad(logit, xi)
        out.append((grad[0] * x).detach().cpu())
    return torch.stack(out) if out else torch.zeros(0, x.numel())


def token_attribution(model, tokens: torch.Tensor, labels: Sequence[tuple[str, int]]) -> torch.Tensor:
    """Gradient × embedding per token for a TextCoder-like model (forward(tokens, embedded)
    → (icd_logits, ccs_logits)). labels: ("icd" | "ccs", column). → [len(labels), n]."""
    was_training = model.training
    model.eval()
    tokens = tokens.unsqueeze(0) if tokens.dim() == 1 else tokens[:1]
    out = []
    try:
        # cuDNN runs an RNN backward only in training mode; the native kernels have no such limit
        with torch.backends.cudnn.flags(enabled=False):
            for branch, column in labels:
                emb = model.embedding(tokens).detach().requires_grad_(True)
                icd, ccs = model(tokens, embedded=emb)
                logit = (icd if branch == "icd" else ccs)[0, column]
                (grad,) = torch.autograd.grad(logit, emb)
                out.append((grad * emb).sum(-1)[0].detach().cpu())
    finally:
        model.train(was_training)
    return torch.stack(out) if out else torch.zeros(0, tokens.shape[1])


def top_spans(token_scores: torch.Tensor, width: int = 6, top: int = 3,
              length: int | None = None) -> list[tuple[int, int, float]]:
    """Non-overlapping windows [start, end) of `width` tokens with the highest summed
    positive attribution, best first: [(start, end, weight)]."""
    return top_spans_rows(token_scores.unsqueeze(0), width, top, length)[0]


def top_spans_rows(token_scores: torch.Tensor, width: int = 6, top: int = 3,
                   length: int | None = None) -> list[list[tuple[int, int, float]]]:
    """`top_spans` of every row of [L, n] scores at once: the window sums in one tensor
    operation, then a short walk per row over plain numbers."""
    scores = token_scores[:, :length] if length else token_scores
    n = scores.shape[1]
    if n == 0:
        return [[] for _ in range(scores.shape[0])]
    width = max(1, min(width, n))
    window = scores.clamp(min=0).unfold(1, width, 1).sum(-1)   # [L, n - width + 1]
    order = torch.argsort(window, dim=1, descending=True, stable=True).tolist()
    out = []
    for sums, starts in zip(window.tolist(), order):
        spans: list[tuple[int, int, float]] = []
        for start in starts:
            if len(spans) >= top or sums[start] <= 0:
                break
            if any(start < end and begin < start + width for begin, end, _ in spans):
                continue
            spans.append((start, start + width, float(sums[start])))
        out.append(spans)
    return out
