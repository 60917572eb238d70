"""`fhir-assist train lm-base`: a small GPT-2-style base model pre-trained on a cohort's text
(code descriptions, verbalised visits, notes), the default start of MERA and LAMO."""
from __future__ import annotations

from pathlib import Path

from fhir_assist.recipes import device_for
from fhir_assist.recipes.language_model_data import corpus, load_split
from fhir_assist.tasks import verbalise


def train(data: str, out: str, *, layers: int, width: int, steps: int, seed: int,
          device=None, progress: bool = True) -> dict:
    from model_zoo.llm import base

    device = device_for(device)
    timelines, split = load_split(data, seed, progress)
    train_timelines = [t for t in timelines if split[t.patient_id] == "train"]
    coding = verbalise.coding_examples(train_timelines)
    medication = verbalise.medication_examples(train_timelines)
    tokens = sorted({label for e in coding for label in e.labels})
    texts = corpus(train_timelines, [coding, medication], [verbalise.token_description(t) for t in tokens])
    config = base.BaseLmConfig(layers=layers, width=width, heads=max(1, width // 32), steps=steps, seed=seed)
    model, tokenizer, log = base.pretrain(texts, config, device)
    base.save(model, tokenizer, Path(out))
    return {**log, "config": config.to_dict(), "out": out}
