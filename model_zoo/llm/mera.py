"""MERA-style diagnosis ranking with a causal LM.

Stage 1 (memorisation): the LM learns code ↔ description and code → parent as text.
Stage 2 (ranking): from a verbalised visit, the scores of the code tokens at the first
generated position rank the codes of every ICD level; the loss is InfoNCE per level (each
positive against that level's negatives) plus the dynamic-threshold loss that places the
end-of-visit token EOV above every negative and below every positive. The per-encounter cut
is where EOV falls in the ranked list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CodeLevels:
    """Which columns of the score matrix belong to which ICD level; EOV is the last column."""
    columns: dict[str, torch.Tensor]
    eov: int


def hierarchical_info_nce(scores: torch.Tensor, targets: torch.Tensor, levels: CodeLevels) -> torch.Tensor:
    """Σ over levels of the mean InfoNCE of each positive against all of that level's negatives."""
    total = scores.new_zeros(())
    for cols in levels.columns.values():
        s, positive = scores[:, cols], targets[:, cols] > 0
        if not positive.any():
            continue
        negatives = torch.logsumexp(s.masked_fill(positive, float("-inf")), dim=1, keepdim=True)
        per_positive = torch.logaddexp(s, negatives) - s
        total = total + per_positive[positive].mean()
    return total


def dynamic_threshold_loss(scores: torch.Tensor, targets: torch.Tensor, billing: torch.Tensor,
                           eov: int) -> torch.Tensor:
    """Positives above EOV, negatives below it (softplus margins, averaged per side)."""
    s, positive = scores[:, billing], targets[:, billing] > 0
    gap = s - scores[:, eov:eov + 1]
    above = F.softplus(-gap)[positive]
    below = F.softplus(gap)[~positive]
    return (above.mean() if above.numel() else gap.new_zeros(())) + \
           (below.mean() if below.numel() else gap.new_zeros(()))


def mera_loss(levels: CodeLevels, threshold_weight: float = 1.0):
    def loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return hierarchical_info_nce(scores, targets, levels) + threshold_weight * \
            dynamic_threshold_loss(scores, targets, levels.columns["billing"], levels.eov)
    return loss


def eov_cut(billing_scores: torch.Tensor, eov_scores: torch.Tensor) -> torch.Tensor:
    """Per encounter, how many codes score above EOV (at least one)."""
    return (billing_scores > eov_scores.unsqueeze(1)).sum(dim=1).clamp(min=1)


# --------------------------------------------------------------------------- memorisation
def memorisation_texts(descriptions: dict[str, str], parents: dict[str, str]) -> list[str]:
    """Code ↔ description and code → parent statements, one per line of the corpus."""
    texts = []
    for token, text in descriptions.items():
        texts.append(f"{token} means {text} <eos>")
        texts.append(f"{text} is coded {token}")
    texts.extend(f"{child} belongs to {parent}" for child, parent in parents.items())
    return texts


def memorisation_prompts(descriptions: dict[str, str]) -> tuple[list[str], list[str]]:
    """Prompts for description → code (read at the next position) and code → description."""
    tokens = list(descriptions)
    return [f"{descriptions[t]} is coded" for t in tokens], [f"{t} means" for t in tokens]


@torch.inference_mode()
def greedy_continuations(lm, tokenizer, prompts: Sequence[str], lengths: Sequence[int],
                         device: torch.device) -> list[list[int]]:
    """Greedy decoding of `lengths[i]` tokens after each prompt (batched, left-padded)."""
    tokenizer.padding_side = "left"
    out = []
    try:
        for start in range(0, len(prompts), 64):
            chunk, n = list(prompts[start:start + 64]), max(lengths[start:start + 64])
            enc = tokenizer(chunk, return_tensors="pt", padding=True).to(device)
            generated = lm.generate(**enc, max_new_tokens=n, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
            tail = generated[:, enc["input_ids"].shape[1]:].tolist()
            out.extend(row[:k] for row, k in zip(tail, lengths[start:start + 64]))
    finally:
        tokenizer.padding_side = "right"
    return out
