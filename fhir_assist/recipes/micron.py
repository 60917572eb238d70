"""Recipe: MICRON and its baselines (SimNN, DualNN, GRU, Frequency; RepeatLast needs no
weights) trained by one call on the same patient split, evaluated on the same test
patients, and stored in one artifact.

The split is by patient (`encode.split_patients`, seed = --seed); vocabularies are built
on the training patients only (`fhir_assist.tasks.medication.encoding`).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fhir_assist.recipes import RecipeError, device_for
from fhir_assist.tasks.medication.artifact import TrainedModels, save
from fhir_assist.tasks.medication.encoding import EncodedCohort, encode_cohort
from fhir_assist.tasks.medication.interactions import ddi_matrix
from fhir_assist.tasks.cohort import load_cohort
from model_zoo.train import is_main_process

MODEL_ORDER = ("MICRON", "SimNN", "DualNN", "RepeatLast", "GRU", "Frequency")
METRIC_KEYS = ("ddi_rate", "jaccard", "f1", "prauc", "err_add", "err_remove", "removals")


def configure_threads() -> None:
    """One intra-op thread unless the user asked otherwise: these models are small,
    and on a shared or busy CPU extra threads spin-wait far longer than they help."""
    import torch

    if not any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                           "FHIR_ASSIST_TORCH_THREADS")):
        torch.set_num_threads(1)
    elif os.environ.get("FHIR_ASSIST_TORCH_THREADS"):
        torch.set_num_threads(max(1, int(os.environ["FHIR_ASSIST_TORCH_THREADS"])))


def default_configs(epochs: int | None, ddi_loss: bool, ddi_weight: float | None = None,
                    ddi_penalty: float | None = None, threshold_rule: str | None = None,
                    ddi_stop_below: float | None = None):
    from model_zoo.baselines import BaselineConfig
    from model_zoo.micron import MicronConfig

    micron_config = MicronConfig(ddi_loss=ddi_loss)
    baseline_config = BaselineConfig()
    if ddi_weight is not None:
        if ddi_weight < 0:
            raise RecipeError("--ddi-weight must not be negative")
        micron_config.lambda_ddi = ddi_weight
    if ddi_penalty is not None:
        if ddi_penalty < 0:
            raise RecipeError("--ddi-penalty must not be negative")
        micron_config.threshold_ddi_penalty = baseline_config.threshold_ddi_penalty = ddi_penalty
    if ddi_stop_below is not None:
        if not 0 <= ddi_stop_below <= 1:
            raise RecipeError("--ddi-stop-below must be between 0 and 1")
        micron_config.ddi_stop_below = ddi_stop_below
    if threshold_rule is not None:
        micron_config.threshold_rule = threshold_rule
    if epochs is not None:
        if epochs < 1:
            raise RecipeError("--epochs must be at least 1")
        micron_config.epochs = baseline_config.epochs = epochs
    return micron_config, baseline_config


def train_models(data: EncodedCohort, ddi: np.ndarray, micron_config, baseline_config, *,
                 seed: int, device, progress: bool = True) -> TrainedModels:
    from model_zoo import baselines
    from model_zoo.micron import count_parameters, train_micron

    train, validation = data.splits["train"], data.splits["validation"]
    if not any(len(p) > 1 for p in train):
        raise RecipeError("no training patient has two or more visits: medication-change models "
                       "learn from consecutive visits")
    sizes = data.sizes
    micron, thresholds, micron_fit = train_micron(train, validation, sizes, ddi, micron_config,
                                                  seed=seed, device=device, progress=progress)
    simnn, simnn_fit = baselines.train_simnn(train, validation, sizes, ddi, baseline_config,
                                             seed=seed, device=device, progress=progress)
    dualnn, dualnn_fit = baselines.train_dualnn(train, validation, sizes, ddi, baseline_config,
                                                seed=seed, device=device, progress=progress)
    gru, gru_fit = baselines.train_gru(train, validation, sizes, ddi, baseline_config,
                                       seed=seed, device=device, progress=progress)
    frequency = baselines.fit_frequency(train, validation, sizes[2])
    fits = {"MICRON": micron_fit, "SimNN": simnn_fit, "DualNN": dualnn_fit, "GRU": gru_fit}
    return TrainedModels(
        micron=micron, thresholds=thresholds, simnn=simnn, dualnn=dualnn, gru=gru,
        frequency=frequency,
        seconds_per_epoch={name: fit.seconds_per_epoch for name, fit in fits.items()},
        best_epoch={name: fit.best_epoch for name, fit in fits.items()},
        params={"MICRON": count_parameters(micron), "SimNN": count_parameters(simnn),
                "DualNN": count_parameters(dualnn), "GRU": count_parameters(gru),
                "RepeatLast": 0, "Frequency": int(sizes[2])},
    )


def predictors(models: TrainedModels, ddi: np.ndarray) -> dict[str, Any]:
    from model_zoo.baselines import RepeatLast
    from model_zoo.micron import MicronPredictor

    return {"MICRON": MicronPredictor(models.micron, models.thresholds, ddi), "SimNN": models.simnn,
            "DualNN": models.dualnn, "RepeatLast": RepeatLast(ddi.shape[0]), "GRU": models.gru,
            "Frequency": models.frequency}


def evaluate_models(models: TrainedModels, patients: Sequence, ddi: np.ndarray,
                    anchor: str = "predicted", progress: bool = False) -> dict[str, dict[str, float]]:
    """Metrics of every model on `patients` (visits from the second on)."""
    from tqdm.auto import tqdm

    from model_zoo.metrics.medication import medication_change_metrics

    scored = [p for p in patients if len(p) > 1]
    results = {}
    for name, predictor in tqdm(predictors(models, ddi).items(), desc="evaluate",
                                unit="model", disable=not progress, file=sys.stderr, leave=False):
        if hasattr(predictor, "predict_many"):
            records = predictor.predict_many(scored, anchor)
        else:
            records = [predictor.predict_patient(p, anchor) for p in scored]
        metrics = medication_change_metrics(records, ddi)
        metrics["removals"] = float(suggested_removals(records))
        metrics["params"] = models.params[name]
        metrics["s_per_epoch"] = models.seconds_per_epoch.get(name, 0.0)
        results[name] = metrics
    return results


def suggested_removals(records) -> int:
    """Medicines the model stopped, summed over every scored visit (t ≥ 2): |M̃(t−1) \\ M̃(t)|
    against the record's base set. A model that never stops a drug scores 0."""
    total = 0
    for record in records:
        for t in range(1, len(record.true_sets)):
            total += len(record.base(t) - set(record.predicted_sets[t]))
    return total


def test_rows(results: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for name in MODEL_ORDER:
        if name in results:
            metrics = results[name]
            row = {"model": name}
            row.update({key: finite(metrics[key]) for key in METRIC_KEYS})
            row["params"] = int(metrics["params"])
            row["s_per_epoch"] = finite(round(float(metrics["s_per_epoch"]), 4))
            rows.append(row)
    return rows


def finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_timelines(data_dir: str, progress: bool = True):
    """Timelines of a cohort directory, with the ingest summary on stderr."""
    return load_cohort(data_dir, progress, summary=progress).timelines


@dataclass
class TrainedMicron:
    path: Any
    test: dict                 # model → test metrics
    test_patients: int
    thresholds: Any
    seconds: float


def train(data_dir: str, out: str, micron_config, baseline_config, *, seed: int = 0, device=None,
          progress: bool = True) -> TrainedMicron:
    """`train micron`: cohort → split and vocabularies → models → test/validation figures → artifact."""
    configure_threads()
    device = device_for(device)
    started = time.perf_counter()
    data = encode_cohort(load_timelines(data_dir, progress), seed)
    if len(data.vocabularies["med"]) < 2:
        raise RecipeError(f"no medications (RxNorm MedicationRequests) found in {data_dir!r}; "
                          "MICRON predicts medication changes")
    ddi = ddi_matrix(data.vocabularies["med"])
    print(f"training on {len(data.splits['train'])} patients "
          f"({len(data.splits['validation'])} validation, {len(data.splits['test'])} test); "
          f"{data.sizes[0]} diagnosis, {data.sizes[1]} procedure, {data.sizes[2]} medication tokens; "
          f"{int(ddi.sum() / 2)} interacting pairs; device {device}", file=sys.stderr)
    models = train_models(data, ddi, micron_config, baseline_config, seed=seed, device=device,
                          progress=progress)
    test = evaluate_models(models, data.splits["test"], ddi, progress=progress)
    validation = evaluate_models(models, data.splits["validation"], ddi)
    metrics = {"test_patients": sum(len(p) > 1 for p in data.splits["test"]),
               "test": test_rows(test), "validation": test_rows(validation)}
    # under `accelerate launch` every process holds the same models: one writes them
    path = save(out, data, models, ddi, micron_config, baseline_config, seed, seed, metrics) \
        if is_main_process() else Path(out)
    return TrainedMicron(path, test, metrics["test_patients"], models.thresholds,
                         time.perf_counter() - started)
