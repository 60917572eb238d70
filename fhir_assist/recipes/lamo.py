"""`fhir-assist train lamo`: a LoRA-tuned causal LM that answers a visit's medication set.

Top to bottom: cohort and split → verbalised visits (structured visit + note) → base LM with
one token per medication → LoRA → per-medication yes/no training → over-prescription control
(threshold calibrated on validation) → test tables beside RepeatLast → artifact.
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
class LamoConfig(StoredConfig):
    fit: dict = field(default_factory=lambda: FitConfig(epochs=4).to_dict())
    base_steps: int = 400                    # pre-training steps when no --base-model is given
    overprescription_penalty: float = 0.5    # F1 paid per extra drug, relative to the true count


def train(data: str, out: str, *, base_path: str | None, lora_rank: int, seed: int,
          device: torch.device, config: LamoConfig | None = None, progress: bool = True) -> dict:
    from model_zoo.llm import code_lm, lamo
    from model_zoo.llm.fit import fit_code_lm
    from model_zoo.llm.vocab import code_token

    config = config or LamoConfig()
    fit = FitConfig.from_dict({**config.fit, "lora_rank": lora_rank, "seed": seed})
    timelines, parts = cohort_examples(data, seed, verbalise.medication_examples, progress)
    rxcuis = sorted({m for e in parts["train"] for m in e.labels})
    if not rxcuis:
        raise LanguageModelError("no medications among the training visits")
    tokens = [code_token("rx", m) for m in rxcuis]
    names = {t: verbalise.medication_name(m) for t, m in zip(tokens, rxcuis)}
    lm, tokenizer, base_log = adapted_model(
        base_path, device, lambda: corpus(timelines, [parts["train"]], list(names.values())),
        config.base_steps, tokens, names, fit.lora_rank, progress)
    model = code_lm.CodeTokenLM(lm, tokenizer, tokens).to(device)
    index = {m: i for i, m in enumerate(rxcuis)}
    fit_log = fit_code_lm(model, [e.prompt for e in parts["train"]], multi_hot(parts["train"], index),
                          lamo.medication_loss, fit, device)
    validation = parts["validation"] or parts["train"]
    threshold = lamo.calibrate_threshold(_probabilities(model, validation, fit),
                                         multi_hot(validation, index).numpy(), config.overprescription_penalty)
    report = {"test": evaluate(model, parts["test"], index, threshold["threshold"], fit, timelines),
              "threshold": threshold, "trainable": code_lm.trainable_fraction(lm), "base": base_log,
              "training": fit_log, "examples": {k: len(v) for k, v in parts.items()}}
    save_artifact(out, lm, tokenizer, {
        "task": "medication-change", "kind": "lamo", "split_seed": seed, "config": config.to_dict(),
        "fit": fit.to_dict(), "medications": rxcuis, "threshold": threshold["threshold"], "report": report})
    return report


def _probabilities(model, examples, fit: FitConfig) -> np.ndarray:
    return torch.sigmoid(model.score([e.prompt for e in examples], fit.max_prompt_tokens)).numpy()


def _set_metrics(predicted: list[set[str]], truth: list[set[str]]) -> dict:
    from mappings import rxnorm

    jaccard = [len(p & t) / max(len(p | t), 1) for p, t in zip(predicted, truth)]
    f1 = [2 * len(p & t) / max(len(p) + len(t), 1) for p, t in zip(predicted, truth)]
    pairs = [(a, b) for p in predicted for a in p for b in p if a < b]
    ddi = sum(rxnorm.interacts(a, b) for a, b in pairs) / max(len(pairs), 1)
    return {"jaccard": float(np.mean(jaccard)), "f1": float(np.mean(f1)), "ddi_rate": float(ddi),
            "drug_count": float(np.mean([len(p) for p in predicted]))}


def evaluate(model, test, index: dict[str, int], threshold: float, fit: FitConfig, timelines) -> dict:
    """LAMO's sets at the calibrated threshold beside RepeatLast (the previous visit's list)."""
    if not test:
        return {}
    started = time.perf_counter()
    probabilities = _probabilities(model, test, fit)
    seconds = time.perf_counter() - started
    rxcuis = list(index)
    truth = [set(e.labels) for e in test]
    lamo_sets = [{rxcuis[j] for j in np.flatnonzero(row >= threshold)} for row in probabilities]
    where = {v.encounter_id: (t, i) for t in timelines for i, v in enumerate(t.visits)}
    repeat_last = [set(where[e.encounter_id][0].visits[where[e.encounter_id][1] - 1].medications) for e in test]
    return {"models": {"lamo": _set_metrics(lamo_sets, truth), "RepeatLast": _set_metrics(repeat_last, truth)},
            "true_drug_count": float(np.mean([len(t) for t in truth])), "visits": len(test),
            "seconds_per_visit": seconds / len(test)}
