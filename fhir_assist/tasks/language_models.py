"""Loading the language-model artifacts (`kind` mera | lamo) for evaluation and serving."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from fhir_assist.tasks.errors import TaskError

LANGUAGE_MODEL_KINDS = ("mera", "lamo")


def is_language_model(config: dict) -> bool:
    return config.get("kind") in LANGUAGE_MODEL_KINDS


def load_code_lm(artifact: str | Path, device: torch.device):
    """(CodeTokenLM, config) of a MERA or LAMO artifact directory."""
    from model_zoo.llm import base, code_lm
    from model_zoo.llm.vocab import EOV, code_token

    path = Path(artifact)
    try:
        config = json.loads((path / "config.json").read_text())
        lm, tokenizer = base.load(path / "lm", device)
    except (OSError, ValueError) as exc:
        raise TaskError(f"cannot load language-model artifact {str(artifact)!r}: {exc}") from None
    if config.get("kind") == "mera":
        tokens = list(config["code_tokens"]) + [EOV]
    elif config.get("kind") == "lamo":
        tokens = [code_token("rx", m) for m in config["medications"]]
    else:
        raise TaskError(f"{str(artifact)!r} is not a language-model artifact (kind {config.get('kind')!r})")
    return code_lm.CodeTokenLM(lm, tokenizer, tokens).to(device), config


def read_kind(artifact: str | Path) -> str | None:
    """The `kind` of an artifact directory's config.json (None when unreadable or absent): how
    serving tells a language-model artifact from a registry one in the same slot."""
    try:
        config = json.loads((Path(artifact) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("kind") if isinstance(config, dict) else None


@dataclass
class ServedLm:
    """A MERA or LAMO artifact loaded for serving: its model, config, version, and
    prompt length limit."""

    path: Path
    device: torch.device
    model: object
    config: dict
    version: str
    max_prompt_tokens: int


def load_served_lm(artifact: str | Path, kind: str, what: str, device=None) -> ServedLm:
    """Load a `kind` artifact ("mera"/"lamo") for serving; ValueError naming `what` it
    should have been when the directory holds another kind."""
    from model_zoo.devices import pick_device
    from model_zoo.llm.fit import FitConfig

    path = Path(artifact)
    device = pick_device(device)
    model, config = load_code_lm(path, device)
    if config.get("kind") != kind:
        raise ValueError(f"{path} is a {config.get('kind')!r} artifact, not {what}")
    return ServedLm(path, device, model, config, artifact_version(path, config),
                    FitConfig.from_dict(config.get("fit", {})).max_prompt_tokens)


def artifact_version(artifact: str | Path, config: dict) -> str:
    """`kind@hash` of the artifact's config (it holds the training report, so every run differs)."""
    digest = hashlib.sha256((Path(artifact) / "config.json").read_bytes()).hexdigest()[:12]
    return f"{config.get('kind', 'lm')}@{digest}"
