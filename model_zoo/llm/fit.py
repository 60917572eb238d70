"""The one training loop of the code-token LMs: prompts + multi-hot targets + a loss."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from model_zoo.stored_config import StoredConfig


@dataclass
class FitConfig(StoredConfig):
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 2e-3
    max_prompt_tokens: int = 256
    lora_rank: int = 8
    seed: int = 0


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (scores [B, C], targets [B, C]) -> loss


def fit_code_lm(model, prompts: Sequence[str], targets: torch.Tensor, loss_fn: LossFn,
                config: FitConfig, device: torch.device,
                progress: Callable[[int, int, float], None] | None = None) -> dict:
    """Mini-batch AdamW over `epochs`; returns seconds per epoch and the last epoch's mean loss."""
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    steps = max(1, config.epochs * -(-len(prompts) // config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate,
                                                   total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(config.seed)
    epoch_seconds, epoch_loss = [], float("nan")
    for epoch in range(config.epochs):
        started, losses = time.perf_counter(), []
        order = torch.randperm(len(prompts), generator=generator).tolist()
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            ids, mask = model.encode([prompts[i] for i in rows], config.max_prompt_tokens, device)
            loss = loss_fn(model(ids, mask), targets[rows].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            if progress:
                progress(epoch, start // config.batch_size, losses[-1])
        epoch_seconds.append(time.perf_counter() - started)
        epoch_loss = sum(losses) / max(len(losses), 1)
    model.eval()
    return {"seconds_per_epoch": sum(epoch_seconds) / max(len(epoch_seconds), 1),
            "final_loss": epoch_loss, "examples": len(prompts)}
