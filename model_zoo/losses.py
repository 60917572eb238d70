"""Loss functions of the zoo (tensors in, scalar tensors out; batch-averaged).

MICRON (Eq. 6–10 of the MICRON paper): reconstruction, DDI, BCE and multi-label
margin losses, and their weighted combination.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["reconstruction_loss", "ddi_loss", "bce_loss", "multilabel_margin_loss", "micron_loss",
           "l2_by_gradient_hook"]


def reconstruction_loss(previous_logits: torch.Tensor, residual_logits: torch.Tensor,
                        current_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 6: ‖σ(m̂(t-1) + u(t)) − σ(m̂(t))‖₂ per visit pair, averaged over the batch."""
    difference = torch.sigmoid(previous_logits + residual_logits) - torch.sigmoid(current_logits)
    # norm of a zero vector has an undefined gradient; the epsilon keeps it finite
    return torch.sqrt((difference ** 2).sum(-1) + 1e-12).mean()


def ddi_loss(logits: torch.Tensor, ddi: torch.Tensor) -> torch.Tensor:
    """Eq. 7: Σ_ij A_ij ô_i ô_j with ô = σ(m̂(t)), averaged over the batch."""
    probabilities = torch.sigmoid(logits)
    return ((probabilities @ ddi.to(probabilities.dtype)) * probabilities).sum(-1).mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 8: binary cross-entropy summed over medicines, averaged over the batch.

    mask: [|M|] or broadcastable 0/1 weights (e.g. to leave the OOV slot out)."""
    losses = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    if mask is not None:
        losses = losses * mask
    return losses.sum(-1).mean()


def multilabel_margin_loss(logits: torch.Tensor, targets: torch.Tensor, margin: float = 1.0,
                           mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 9: Σ_{i∈M, j∉M} max(0, margin − (ô_i − ô_j)) / |M| on ô = σ(logits).

    With margin ≥ 1 the hinge never clips (ô_i − ô_j < 1 for probabilities), so
    the pair sum has the closed form |P|·Σ_N(margin + ô_j) − |N|·Σ_P ô_i: O(|M|)
    instead of O(|M|²) memory and time. Rows without a positive (or without a
    negative) contribute 0."""
    probabilities = torch.sigmoid(logits)
    positive = targets.to(probabilities.dtype)
    negative = 1.0 - positive
    if mask is not None:
        negative = negative * mask.to(probabilities.dtype)
    if margin >= 1.0:
        n_pos, n_neg = positive.sum(-1), negative.sum(-1)
        total = (n_pos * (margin * n_neg + (probabilities * negative).sum(-1))
                 - n_neg * (probabilities * positive).sum(-1))
        return total.div(logits.shape[-1]).mean()
    # [B, |M| (positive i), |M| (negative j)]
    gaps = torch.clamp(margin - (probabilities.unsqueeze(2) - probabilities.unsqueeze(1)), min=0)
    pairs = positive.unsqueeze(2) * negative.unsqueeze(1)
    return (gaps * pairs).sum((1, 2)).div(logits.shape[-1]).mean()


def micron_loss(previous_logits: torch.Tensor, current_logits: torch.Tensor,
                residual_logits: torch.Tensor, previous_targets: torch.Tensor,
                current_targets: torch.Tensor, ddi: torch.Tensor | None, *,
                gamma: float = 0.75, weights: tuple[float, float, float, float] = (1.0, 0.1, 1.0, 1.0),
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 10: λ1·L_rec + λ2·L_ddi + λ3·(γ L_bce(t) + (1−γ) L_bce(t−1))
    + λ4·(γ L_multi(t) + (1−γ) L_multi(t−1)).

    ddi None (or λ2 = 0) drops the DDI term (the `--no-ddi-loss` ablation).
    Returns the total and the parts (floats, for logging)."""
    rec_w, ddi_w, bce_w, multi_w = weights
    rec = reconstruction_loss(previous_logits, residual_logits, current_logits)
    bce = gamma * bce_loss(current_logits, current_targets, mask) + \
        (1 - gamma) * bce_loss(previous_logits, previous_targets, mask)
    multi = gamma * multilabel_margin_loss(current_logits, current_targets, mask=mask) + \
        (1 - gamma) * multilabel_margin_loss(previous_logits, previous_targets, mask=mask)
    total = rec_w * rec + bce_w * bce + multi_w * multi
    parts = {"rec": float(rec.detach()), "bce": float(bce.detach()), "multi": float(multi.detach())}
    if ddi is not None and ddi_w:
        ddi_value = ddi_loss(current_logits, ddi)
        total = total + ddi_w * ddi_value
        parts["ddi"] = float(ddi_value.detach())
    return total, parts


# ----------------------------------------------------------------------------- focal (coding)

def focal_loss(logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.999,
               gamma: float = 2.0, weights: torch.Tensor | None = None) -> torch.Tensor:
    """MARN Eq. 16: Σ_i −y α (1−p)^γ log p − (1−y)(1−α) p^γ log(1−p), summed over
    labels and averaged over the batch. α = 0.999 and γ = 2 are the paper's values:
    α puts the weight on the rare positives, (1−p)^γ on the codes still misclassified.
    Computed from logits (log-sigmoid) so it stays finite for confident predictions.

    weights: optional per-element (or broadcastable) multipliers, e.g. coder feedback."""
    targets = targets.to(logits.dtype)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.exp(log_p)
    positive = -alpha * (1 - p).pow(gamma) * log_p
    negative = -(1 - alpha) * p.pow(gamma) * log_not_p
    losses = targets * positive + (1 - targets) * negative
    if weights is not None:
        losses = losses * weights
    return losses.sum(-1).mean()


def multitask_focal_loss(icd_logits: torch.Tensor, icd_targets: torch.Tensor,
                         ccs_logits: torch.Tensor, ccs_targets: torch.Tensor, *,
                         lambda_icd: float = 0.7, lambda_ccs: float = 0.3, alpha: float = 0.999,
                         gamma: float = 2.0) -> torch.Tensor:
    """MARN Eq. 17: λ_icd · FL_icd + λ_ccs · FL_ccs (paper: 0.7 / 0.3)."""
    return (lambda_icd * focal_loss(icd_logits, icd_targets, alpha=alpha, gamma=gamma)
            + lambda_ccs * focal_loss(ccs_logits, ccs_targets, alpha=alpha, gamma=gamma))
__all__ += ["focal_loss", "multitask_focal_loss"]


def l2_by_gradient_hook(param: torch.nn.Parameter, l2: float):
    """Add the gradient of l2·‖param‖² (2·l2·param) to `param`'s gradient in one pass, instead
    of a penalty term in the loss: for a wide layer of millions of weights the square, the sum
    and their backward each step cost more than the data term. Same optimum and the same
    steps; the loss value then leaves the penalty out. Returns the hook's handle (`.remove()`)."""
    return param.register_hook(lambda grad: grad.add(param.detach(), alpha=2 * l2))
