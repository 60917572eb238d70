"""Which torch device to run on: used by training and by inference alike (inference must
not import the training loop for it)."""
from __future__ import annotations

import os

import torch

__all__ = ["pick_device"]


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """`requested` if given (e.g. "cpu", "cuda:1"), else cuda when available, else cpu.

    Raises ValueError for a cuda device on a machine without one, so a CLI can
    report it instead of failing deep inside torch.
    """
    if requested is not None and str(requested).strip():
        device = torch.device(str(requested).strip())
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device {str(requested)!r} requested but CUDA is not available")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ValueError(f"device {str(requested)!r} requested but only "
                                 f"{torch.cuda.device_count()} CUDA device(s) exist")
        return device
    if torch.cuda.is_available():
        # under `accelerate launch` / torchrun each process takes its own GPU
        local_rank = os.environ.get("LOCAL_RANK")
        if local_rank is not None and local_rank.isdigit():
            return torch.device("cuda", int(local_rank) % torch.cuda.device_count())
        return torch.device("cuda")
    return torch.device("cpu")
