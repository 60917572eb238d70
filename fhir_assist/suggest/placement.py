"""Where the served models run (`serve`, `demo`, `code-batch`), and what that means for processes.

A hook call or a batch worker scores one visit at a time. The small models (the ranker, the
text coder, MICRON) then spend their time in Python and in a handful of tiny matrix products:
on a GPU each product waits for a kernel launch and a copy back, so the CPU is as fast for
them, and CPU processes scale with the cores (see README, "Serving on a GPU machine"). The
language-model entries (MERA, LAMO) are what a GPU is for. So the automatic choice ("auto") is
the CPU for the small models and the GPU, when there is one, for a language model; `--device`
(FHIR_ASSIST_DEVICE) puts every model that can move on the device named. MICRON always runs on
the CPU: its state update is a few matrix-vector products.

A CUDA context does not survive `fork`: models loaded on a GPU in the server's master could
not be used by the worker processes forked from it. So where a model runs on a GPU, one
process serves (threads share the model), and asking for more is refused with the reason.
"""
from __future__ import annotations

import re
from pathlib import Path

AUTO = "auto"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class PlacementError(ValueError):
    """A device that cannot be used here, or more processes than a GPU model allows."""


def checked_device(value: str) -> str:
    """The device setting, normalised: "auto", "cpu", "cuda" or "cuda:N"."""
    text = str(value).strip().lower()
    if not _DEVICE.fullmatch(text):
        raise PlacementError(f"device must be auto, cpu, cuda or cuda:N, not {value!r}")
    return text


def model_device(requested: str, language_model: bool, cuda_available: bool | None = None) -> str:
    """The device one model runs on: the requested one, or under "auto" the GPU for a
    language model when there is one and the CPU otherwise."""
    requested = checked_device(requested)
    if requested != AUTO:
        return requested
    if not language_model:
        return "cpu"
    return "cuda" if (_cuda_available() if cuda_available is None else cuda_available) else "cpu"


def uses_gpu(requested: str, models_dir: Path, cuda_available: bool | None = None) -> bool:
    """Whether any model of `models_dir` would run on a GPU, read before any model loads
    (so the process count can be chosen before the models are built and forked)."""
    requested = checked_device(requested)
    if requested == "cpu":
        return False
    if requested != AUTO:
        return True
    from .model_set import MEDICATION, RANKER, TEXT_CODER     # the slots `suggest.loading` may fill with one

    if not any(_is_language_model(models_dir / slot) for slot in (MEDICATION, RANKER, TEXT_CODER)):
        return False
    return _cuda_available() if cuda_available is None else cuda_available


def processes_for(requested: int, gpu: bool, automatic: int) -> int:
    """Processes to run: one where a model sits on a GPU (the count asked for must then be
    1 or automatic), else `requested` or the automatic count."""
    if not gpu:
        return requested or automatic
    if requested > 1:
        raise PlacementError(
            f"{requested} processes were asked for, but a model runs on a GPU and a CUDA context cannot be "
            "shared by forked processes: serve it with one process (threads share the model), or put every "
            "model on the CPU with --device cpu (FHIR_ASSIST_DEVICE=cpu) to run several")
    return 1


def process_count(requested: int, device: str, models_dir: Path, automatic: int) -> int:
    """How many processes may serve `models_dir` placed by `device`: `processes_for` once the
    device is known to exist here (PlacementError otherwise)."""
    check_available(device)
    return processes_for(requested, uses_gpu(device, models_dir), automatic)


def check_available(requested: str) -> None:
    """Refuse, with the reason, a CUDA device this machine does not have (before any model loads)."""
    requested = checked_device(requested)
    if requested.startswith("cuda"):
        from model_zoo.devices import pick_device
        try:
            pick_device(requested)
        except ValueError as exc:
            raise PlacementError(str(exc)) from None


def _is_language_model(path: Path) -> bool:
    from fhir_assist.tasks.language_models import LANGUAGE_MODEL_KINDS, read_kind
    return read_kind(path) in LANGUAGE_MODEL_KINDS


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()
