"""Recipe: `train icd-ranker|text-coder` — cohort → encounters → trained model and baselines →
test figures → artifact; and the small bundled demo coding models."""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_assist.recipes import RecipeError, device_for
from fhir_assist.recipes.ranker import train_ranker_models
from fhir_assist.recipes.text_coder import train_text_models
from fhir_assist.tasks.coding.artifact import save_ranker, save_text
from fhir_assist.tasks.coding.encounters import collect_encounters, data_fingerprint
from fhir_assist.tasks.coding.evaluation import SELECT_METRICS, head_metrics
from fhir_assist.tasks.coding.feedback import Feedback
from fhir_assist.tasks.coding.models import MODEL_CLASSES, from_bundle
from fhir_assist.tasks.coding.settings import RankerSettings, TextSettings
from fhir_assist.tasks.cohort import load_cohort
from model_zoo.train import is_main_process


@dataclass(frozen=True)
class CodingRecipe:
    settings: type        # RankerSettings | TextSettings
    train: Any            # encounters, settings=…, seed=…, … → bundle
    save: Any             # bundle, out, … → artifact path


RECIPES = {"icd-ranker": CodingRecipe(RankerSettings, train_ranker_models, save_ranker),
           "text-coder": CodingRecipe(TextSettings, train_text_models, save_text)}

DEMO_OVERRIDES = {
    # small enough to ship (< 5 MB) and to rebuild in a couple of minutes on a laptop CPU
    # no wide path (inputs × labels weights: 15 MB in float16); the copy path, which carries
    # "this code again" from the record, stays
    "icd-ranker": {"hidden": [256, 256], "dropout": 0.5, "epochs": 15, "patience": 4, "wide": False},
    # the product's TF-IDF coder, its vocabulary × labels weights stored as a rank-192 product
    "text-coder": {"architecture": "tfidf", "tfidf_rank": 192},
}


@dataclass
class TrainedCoding:
    path: Path
    model: str                 # the model whose figures the command prints
    metrics: dict


def print_stats(title: str, stats: Counter) -> None:
    """What was counted and skipped while reading, on stderr."""
    print(title, file=sys.stderr)
    for key in sorted(stats):
        print(f"  {key}: {stats[key]}", file=sys.stderr)


def test_metrics(bundle, kind: str, encounters, device) -> dict:
    """{model: per-head metrics} on the test encounters (empty when there are none)."""
    test = [e for e in encounters if e.split == "test"]
    if not test:
        return {}
    model = from_bundle(kind, bundle)
    scores = model.scores(test, device)
    y = bundle.labels.encode(test)
    slices = bundle.labels.slices()
    return {name: head_metrics(s, y, slices, bundle.thresholds.get(name)) for name, s in scores.items()}


def train(kind: str, data: str, out: str, *, overrides: dict, seed: int = 0, select: str = "ndcg",
          device=None, feedback_path: str | None = None, progress: bool = True) -> TrainedCoding:
    """Train a coding model of `kind` with its defaults updated by `overrides`."""
    if kind not in RECIPES:
        raise RecipeError(f"unknown coding model {kind!r}")
    recipe = RECIPES[kind]
    if select not in SELECT_METRICS:
        raise RecipeError(f"--select must be one of {', '.join(SELECT_METRICS)}")
    device = device_for(device)
    feedback = None
    if feedback_path:
        feedback = Feedback.read(feedback_path)
        print_stats(f"feedback {feedback_path}:", feedback.stats)
    cohort = load_cohort(data, progress)
    encounters, stats = collect_encounters(cohort.timelines, seed, feedback=feedback,
                                           with_notes=MODEL_CLASSES[kind].reads_notes, progress=progress)
    print_stats(f"cohort {data}: {len(cohort.timelines)} patients", stats)
    bundle = recipe.train(encounters, settings=recipe.settings(**overrides), seed=seed,
                          select=select, device=device, progress=progress)
    metrics = test_metrics(bundle, kind, encounters, device)
    path = Path(out)
    if is_main_process():        # under `accelerate launch` every process holds the same model: one writes it
        path = recipe.save(bundle, out, seed=seed, select=select, metrics=metrics,
                           data_fingerprint=data_fingerprint(encounters), cohort_stats=stats)
    return TrainedCoding(path, from_bundle(kind, bundle).name, metrics)


def build_demo_model(kind: str, data: str, out: str, *, seed: int = 0, progress: bool = True) -> Path:
    """Train a bundled demo artifact: the product's recipe with DEMO_OVERRIDES, baseline
    weights left out and the network stored in float16 to stay small."""
    recipe = RECIPES[kind]
    device = device_for("cpu")
    cohort = load_cohort(data, progress)
    encounters, stats = collect_encounters(cohort.timelines, seed,
                                           with_notes=MODEL_CLASSES[kind].reads_notes, progress=progress)
    bundle = recipe.train(encounters, settings=recipe.settings(**DEMO_OVERRIDES[kind]), seed=seed, select="ndcg", device=device,
                          progress=progress)
    metrics = test_metrics(bundle, kind, encounters, device)
    return recipe.save(bundle, out, seed=seed, select="ndcg", metrics=metrics,
                       data_fingerprint=data_fingerprint(encounters), cohort_stats=stats,
                       keep_baselines=False, half=True)
