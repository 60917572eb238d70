"""What the language-model recipes share: the cohort and its split, the base model, artifacts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from fhir_assist.recipes import RecipeError
from fhir_assist.tasks.verbalise import Example


class LanguageModelError(RecipeError):
    """A language-model recipe cannot run as asked (no examples, no base model)."""


def load_split(data: str, seed: int, progress: bool = True):
    """Patient timelines of `data` and a patient → split map (the same split as every model)."""
    from fhir_assist.adapter import encode
    from fhir_assist.tasks.cohort import load_cohort

    cohort = load_cohort(data, progress=progress)
    split = encode.split_patients([t.patient_id for t in cohort.timelines], seed)
    return cohort.timelines, split


def by_split(examples: list[Example], split: dict[str, str]) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for example in examples:
        out[split[example.patient_id]].append(example)
    if not out["train"]:
        raise LanguageModelError("no training examples: the cohort is too small")
    return out


def corpus(timelines, examples_by_kind: list[list[Example]], descriptions: list[str]) -> list[str]:
    """Texts a base model learns the language of the record from: every prompt, every note,
    every description of a code the cohort uses."""
    texts = [e.prompt for examples in examples_by_kind for e in examples]
    texts += [note for t in timelines for v in t.visits for note in v.notes]
    return texts + descriptions


def base_model(path: str | None, device: torch.device, fallback_texts: Callable[[], list[str]],
               steps: int, progress: bool = True):
    """The base LM at `path`, or one pre-trained here on `fallback_texts()` when none is given."""
    from model_zoo.llm import base

    if path:
        try:
            model, tokenizer = base.load(Path(path), device)
        except (OSError, ValueError) as exc:
            raise LanguageModelError(f"cannot load a causal LM from {path!r}: {exc}") from None
        return model, tokenizer, {"base_model": str(path)}
    config = base.BaseLmConfig(steps=steps)
    model, tokenizer, log = base.pretrain(fallback_texts(), config, device)
    return model, tokenizer, {"base_model": "pre-trained on this cohort", **log, "config": config.to_dict()}


def cohort_examples(data: str, seed: int, make_examples, progress: bool = True):
    """(timelines, examples by split) of a cohort, with torch seeded for what follows."""
    torch.manual_seed(seed)
    timelines, split = load_split(data, seed, progress)
    return timelines, by_split(make_examples(timelines), split)


def adapted_model(base_path: str | None, device: torch.device, texts: Callable[[], list[str]],
                  base_steps: int, tokens: list[str], descriptions: dict[str, str], lora_rank: int,
                  progress: bool = True):
    """The base LM with one token per code added and LoRA adapters on: (lm, tokenizer, log)."""
    from model_zoo.llm import code_lm

    lm, tokenizer, log = base_model(base_path, device, texts, base_steps, progress)
    new_ids = code_lm.extend_vocabulary(lm, tokenizer, tokens, descriptions)
    return code_lm.with_lora(lm, lora_rank, new_ids), tokenizer, log


def multi_hot(examples: list[Example], index: dict[str, int]) -> torch.Tensor:
    out = torch.zeros(len(examples), len(index))
    for row, example in enumerate(examples):
        for label in example.labels:
            if label in index:
                out[row, index[label]] = 1.0
    return out


def save_artifact(out: str, lm, tokenizer, config: dict) -> Path:
    path = Path(out)
    (path / "lm").mkdir(parents=True, exist_ok=True)
    if hasattr(lm, "merge_and_unload"):          # LoRA: fold the adapters into the weights
        lm = lm.merge_and_unload()
    lm.save_pretrained(path / "lm")
    tokenizer.save_pretrained(path / "lm")
    (path / "config.json").write_text(json.dumps(config, indent=2, default=float))
    return path
