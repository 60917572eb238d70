"""`fhir-assist train mera`: memorise the cohort's codes, then learn to rank them per visit.

Top to bottom: cohort and split → verbalised visits → base LM with one token per code (and
EOV) → LoRA → stage 1 memorisation → stage 2 hierarchical InfoNCE + EOV threshold → test
tables → artifact.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from fhir_assist.recipes.language_model_data import (
    LanguageModelError, adapted_model, cohort_examples, corpus, multi_hot, save_artifact)
from fhir_assist.tasks import verbalise
from model_zoo.llm.fit import FitConfig
from model_zoo.stored_config import StoredConfig


@dataclass
class MeraConfig(StoredConfig):
    fit: dict = field(default_factory=lambda: FitConfig(epochs=4).to_dict())
    memorisation_steps: int = 300
    base_steps: int = 400          # pre-training steps when no --base-model is given
    threshold_weight: float = 1.0
    memorisation_sample: int = 300  # codes checked for exact-match memorisation


def code_vocabulary(train) -> tuple[list[str], dict[str, list[str]]]:
    """Every dx token of the training visits, and the levels each one stands for."""
    tokens = sorted({label for example in train for label in example.labels})
    return tokens, {t: verbalise.level_of(t) for t in tokens}


def train(data: str, out: str, *, base_path: str | None, lora_rank: int, seed: int,
          device: torch.device, config: MeraConfig | None = None, progress: bool = True) -> dict:
    from model_zoo.llm import code_lm, mera
    from model_zoo.llm.base import train_causal_lm
    from model_zoo.llm.fit import fit_code_lm
    from model_zoo.llm.vocab import EOV

    config = config or MeraConfig()
    fit = FitConfig.from_dict({**config.fit, "lora_rank": lora_rank, "seed": seed})
    timelines, parts = cohort_examples(data, seed, verbalise.coding_examples, progress)
    tokens, levels = code_vocabulary(parts["train"])
    descriptions = {t: verbalise.token_description(t) for t in tokens}
    lm, tokenizer, base_log = adapted_model(
        base_path, device, lambda: corpus(timelines, [parts["train"]], list(descriptions.values())),
        config.base_steps, tokens + [EOV], descriptions, fit.lora_rank, progress)
    parents = {t: verbalise.dx_token(level, node) for t in tokens
               for level, node in _parent(t, levels[t]).items()}
    memory_log = train_causal_lm(lm, tokenizer, mera.memorisation_texts(descriptions, parents),
                                 steps=config.memorisation_steps, batch_size=32, learning_rate=fit.learning_rate,
                                 context=64, seed=seed, device=device)
    model = code_lm.CodeTokenLM(lm, tokenizer, tokens + [EOV]).to(device)
    columns = _level_columns(tokens, levels)
    loss = mera.mera_loss(mera.CodeLevels(columns, eov=len(tokens)), config.threshold_weight)
    index = {t: i for i, t in enumerate(tokens)}
    fit_log = fit_code_lm(model, [e.prompt for e in parts["train"]], multi_hot(parts["train"], index),
                          loss, fit, device)
    report = {"memorisation": memorisation_accuracy(model, descriptions, config.memorisation_sample, seed, device),
              "test": evaluate(model, parts["test"], parts["train"], tokens, columns, fit, timelines),
              "trainable": code_lm.trainable_fraction(lm), "base": base_log,
              "stage1": memory_log, "stage2": fit_log, "examples": {k: len(v) for k, v in parts.items()}}
    save_artifact(out, lm, tokenizer, {
        "task": "icd-coding", "kind": "mera", "split_seed": seed, "config": config.to_dict(),
        "fit": fit.to_dict(), "code_tokens": tokens, "levels": levels, "report": report,
        "serving": serving_calibration(model, parts["validation"], index, columns["billing"], fit)})
    return report


def serving_calibration(model, validation, index: dict[str, int], billing: torch.Tensor, fit: FitConfig) -> dict:
    """What serving needs to read σ(code − EOV) as a probability: a Platt recalibration and the
    precision curve of the calibrated billing scores on the validation visits (the write-back floor)."""
    from model_zoo.recall_cut import apply_platt, fit_platt, precision_curve, sigmoid

    if not validation:
        return {}
    scores = model.score([e.prompt for e in validation], fit.max_prompt_tokens).numpy()
    cols = billing.numpy()
    raw = sigmoid(scores[:, cols] - scores[:, -1:])
    labels = multi_hot(validation, index).numpy()[:, cols]
    calibration = fit_platt(raw, labels)
    return {"calibration": calibration, "precision_curve": precision_curve(apply_platt(raw, calibration), labels),
            "validation_visits": len(validation)}


def _parent(token: str, token_levels: list[str]) -> dict[str, str]:
    """The next level up of a dx token (e.g. E11.65 → E11.6), if it has one."""
    node = token[len("[dx:"):-1]
    finest = token_levels[-1]
    rollup = verbalise.icd_nodes(verbalise.Code(system=_system_of(node), code=node)) if finest != "chapter" else {}
    order = [level for level in verbalise.ICD_LEVELS if level in rollup]
    if finest in order and order.index(finest) > 0:
        up = order[order.index(finest) - 1]
        return {up: rollup[up]}
    return {}


def _system_of(node: str) -> str:
    from mappings import codesystems
    return codesystems.detect_icd_system(node) or codesystems.ICD10CM


def _level_columns(tokens: list[str], levels: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    columns = {level: [i for i, t in enumerate(tokens) if level in levels[t]] for level in verbalise.ICD_LEVELS}
    if not columns["billing"]:
        raise LanguageModelError("no billing codes among the training visits")
    return {level: torch.tensor(cols) for level, cols in columns.items() if cols}


@torch.inference_mode()
def memorisation_accuracy(model, descriptions: dict[str, str], sample: int, seed: int, device) -> dict:
    """Exact match of description → code (code token ranked first) and code → description
    (greedy decoding reproduces the description's words)."""
    from model_zoo.llm import mera

    rng = np.random.default_rng(seed)
    tokens = list(descriptions)
    chosen = [tokens[i] for i in rng.choice(len(tokens), size=min(sample, len(tokens)), replace=False)]
    to_code, to_text = mera.memorisation_prompts({t: descriptions[t] for t in chosen})
    scores = model.score(to_code, max_length=64)[:, :-1]        # without EOV
    column = {t: i for i, t in enumerate(model.code_tokens)}
    code_hits = [int(scores[row].argmax()) == column[t] for row, t in enumerate(chosen)]
    tokenizer = model.tokenizer
    wanted = [tokenizer(descriptions[t], add_special_tokens=False)["input_ids"] for t in chosen]
    decoded = mera.greedy_continuations(model.lm, tokenizer, to_text, [len(w) for w in wanted], device)
    text_hits = [got == want for got, want in zip(decoded, wanted)]
    return {"codes": len(chosen), "description_to_code": float(np.mean(code_hits)),
            "code_to_description": float(np.mean(text_hits))}


def evaluate(model, test, train, tokens, columns, fit: FitConfig, timelines) -> dict:
    """Per-level ranking tables, the EOV cut against the expected-recall cut, and the
    frequency / previous-visit rules on the same visits."""
    from fhir_assist.recipes.language_model_tables import cut_summary, ranking_tables

    if not test:
        return {}
    started = time.perf_counter()
    scores = model.score([e.prompt for e in test], fit.max_prompt_tokens).numpy()
    seconds = time.perf_counter() - started
    index = {t: i for i, t in enumerate(tokens)}
    labels = multi_hot(test, index).numpy()
    tables = ranking_tables(scores[:, :-1], labels, columns, train, test, index, timelines)
    billing = columns["billing"].numpy()
    tables["cut"] = cut_summary(scores[:, billing], scores[:, -1], labels[:, billing])
    tables["seconds_per_visit"] = seconds / len(test)
    return tables
