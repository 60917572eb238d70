"""Recipe: `evaluate` of a medication-change artifact — every stored model on the test
patients of a cohort (the artifact's split and vocabularies), under both base-set
protocols, optionally retrained with N initialisation seeds."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from fhir_assist.recipes import RecipeError, device_for
from fhir_assist.recipes.micron import (METRIC_KEYS, configure_threads, evaluate_models,
                                        finite, load_timelines, test_rows, train_models)
from fhir_assist.tasks.medication import TASK
from fhir_assist.tasks.medication.artifact import restore
from fhir_assist.tasks.medication.encoding import encode_cohort


@dataclass
class MicronEvaluation:
    artifact: Any
    thresholds: Any
    test_patients: int
    seeds: int
    summary: dict              # model → metrics, base set = previous predicted set
    summary_observed: dict     # model → metrics, base set = previous prescription
    same_data: bool


def evaluate(artifact_name: str, data_dir: str, *, seeds: int = 1, device=None,
             progress: bool = True) -> MicronEvaluation:
    from fhir_assist.tasks.artifacts import load_artifact

    configure_threads()
    device = device_for(device)
    if seeds < 1:
        raise RecipeError("--seeds must be at least 1")
    try:
        artifact = load_artifact(artifact_name)
    except (FileNotFoundError, ValueError) as exc:
        raise RecipeError(f"cannot load artifact {artifact_name!r}: {exc}") from None
    models, vocabularies, ddi = restore(artifact)
    hyper = artifact.hyperparameters
    data = encode_cohort(load_timelines(data_dir, progress=progress), int(hyper["split_seed"]),
                         vocabularies)
    test = data.splits["test"]
    scored = sum(len(p) > 1 for p in test)
    if scored == 0:
        raise RecipeError(f"no test patient of {data_dir!r} has two or more visits (split seed "
                          f"{hyper['split_seed']}); nothing to evaluate")
    runs = [evaluate_models(models, test, ddi, progress=progress)]
    observed = [evaluate_models(models, test, ddi, anchor="observed")]
    if seeds > 1:
        _retrain_seeds(data, ddi, hyper, seeds, device, progress, runs, observed)
    return MicronEvaluation(artifact, models.thresholds, scored, seeds, summarize(runs),
                            summarize(observed),
                            data.fingerprint == artifact.config.get("data_fingerprint"))


def _retrain_seeds(data, ddi, hyper, seeds, device, progress, runs, observed) -> None:
    """Seeds init_seed + 1 … init_seed + seeds − 1 on the same split: append their figures."""
    from model_zoo.baselines import BaselineConfig
    from model_zoo.micron import MicronConfig

    micron_config = MicronConfig.from_dict(hyper["micron"])
    baseline_config = BaselineConfig.from_dict(hyper["baselines"])
    test = data.splits["test"]
    first = int(hyper.get("init_seed", 0))
    for seed in range(first + 1, first + seeds):
        print(f"retraining with seed {seed} ({seed - first + 1}/{seeds})", file=sys.stderr)
        retrained = train_models(data, ddi, micron_config, baseline_config, seed=seed,
                                 device=device, progress=progress)
        runs.append(evaluate_models(retrained, test, ddi))
        observed.append(evaluate_models(retrained, test, ddi, anchor="observed"))


def json_document(result: MicronEvaluation) -> dict:
    """What `evaluate --json` prints for a medication-change artifact."""
    thresholds, hyper = result.thresholds, result.artifact.hyperparameters
    return {
        "task": TASK,
        "test_patients": result.test_patients,
        "models": _json_rows(result.summary, result.seeds),
        "seeds": result.seeds,
        "protocol": "base set = previous predicted set, first visit given (MICRON paper)",
        "models_observed_base": _json_rows(result.summary_observed, result.seeds),
        "artifact": str(result.artifact.path),
        "same_data_as_training": result.same_data,
        "thresholds": {"add": thresholds.add, "remove": thresholds.remove,
                       "rule": thresholds.rule,
                       "removal_recall": thresholds.removal_recall,
                       # artifacts from before DDI control searched on F1 alone
                       "ddi_penalty": hyper["micron"].get("threshold_ddi_penalty", 0.0),
                       "validation_ddi_rate": thresholds.validation_ddi_rate,
                       "ddi_stop_below": thresholds.ddi_stop_below},
    }


def summarize(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean over seeds, with `<metric>_std` (population std) when there are several."""
    out: dict[str, dict[str, float]] = {}
    for name in runs[0]:
        merged: dict[str, float] = {}
        for key in METRIC_KEYS + ("params", "s_per_epoch"):
            values = np.asarray([run[name][key] for run in runs], dtype=np.float64)
            merged[key] = float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan")
            if len(runs) > 1 and key in METRIC_KEYS:
                merged[f"{key}_std"] = float(np.nanstd(values)) if not np.all(np.isnan(values)) \
                    else float("nan")
        out[name] = merged
    return out


def _json_rows(summary: dict[str, dict[str, float]], seeds: int) -> list[dict[str, Any]]:
    rows = test_rows(summary)
    if seeds > 1:
        for row in rows:
            for key in METRIC_KEYS:
                row[f"{key}_std"] = finite(summary[row["model"]][f"{key}_std"])
    return rows
