"""The medication-change artifact: MICRON with its baselines (SimNN, DualNN, GRU,
Frequency), vocabularies, per-medicine cut-offs and DDI pairs. `save` writes it,
`load_micron` reads what the service needs, `restore` reads every model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fhir_assist.tasks.medication import TASK
from fhir_assist.tasks.medication.encoding import EncodedCohort, vocabulary_min_counts
from fhir_assist.tasks.medication.interactions import ddi_from_pairs, ddi_to_pairs


@dataclass
class TrainedModels:
    """Everything training produces for one initialisation seed."""

    micron: Any
    thresholds: Any
    simnn: Any
    dualnn: Any
    gru: Any
    frequency: Any
    seconds_per_epoch: dict[str, float]
    best_epoch: dict[str, int]
    params: dict[str, int]


@dataclass
class LoadedMicron:
    """What one visit's update needs: the model, its cut-offs, vocabularies and DDI table."""

    model: Any
    thresholds: Any
    vocabularies: dict[str, Any]
    ddi: np.ndarray


def save(path: str, data: EncodedCohort, models: TrainedModels, ddi: np.ndarray, micron_config,
         baseline_config, split_seed: int, init_seed: int, metrics: dict) -> Path:
    import torch

    from model_zoo import registry

    config = {
        "model": "micron",
        "sizes": list(data.sizes),
        "split_seed": split_seed,
        "init_seed": init_seed,
        "micron": micron_config.to_dict(),
        "baselines": baseline_config.to_dict(),
        "gru_threshold": models.gru.threshold,
        "frequency_threshold": models.frequency.threshold,
        "seconds_per_epoch": models.seconds_per_epoch,
        "best_epoch": models.best_epoch,
        "params": models.params,
        "ddi_pairs": ddi_to_pairs(ddi),
        "vocabulary_min_count": vocabulary_min_counts(),
        "cohort": {"patients": data.patients,
                   **{f"{name}_patients": len(seqs) for name, seqs in data.splits.items()},
                   "skipped_visits": data.skipped_visits},
    }
    weights = {
        "micron": models.micron.state_dict(),
        "simnn": models.simnn.state_dict(),
        "dualnn": models.dualnn.state_dict(),
        "gru": models.gru.state_dict(),
        "frequency": {"prevalence": torch.as_tensor(models.frequency.prevalence, dtype=torch.float64)},
    }
    return registry.save_artifact(
        path, task=TASK, weights=weights, config=config,
        vocabularies={name: vocab.to_dict() for name, vocab in data.vocabularies.items()},
        # per-medicine cut-offs live with the thresholds, not the hyperparameters (which
        # the model card prints): MICRON's δ1/δ2 and the change baselines' (add, remove)
        thresholds={**models.thresholds.to_dict(),
                    "baselines": {"simnn": models.simnn.change_thresholds,
                                  "dualnn": models.dualnn.change_thresholds}},
        metrics=metrics,
        data_fingerprint=data.fingerprint)


def load_micron(artifact) -> LoadedMicron:
    """MICRON (eval mode), its thresholds, vocabularies and DDI matrix; ValueError when the
    artifact is of another task."""
    from fhir_assist.adapter.encode import Vocabulary
    from model_zoo.micron import Micron, MicronConfig
    from model_zoo.thresholds import MicronThresholds

    if artifact.task != TASK:
        raise ValueError(f"artifact {artifact.path} is a {artifact.task!r} model, "
                         "not a medication-change model")
    hyper = artifact.hyperparameters
    sizes = tuple(hyper["sizes"])
    micron = Micron.from_config(sizes, MicronConfig.from_dict(hyper["micron"]))
    micron.load_state_dict(artifact.weights["micron"])
    vocabularies = {name: Vocabulary.from_dict(data) for name, data in artifact.vocabularies.items()}
    return LoadedMicron(micron.eval(), MicronThresholds.from_dict(artifact.thresholds), vocabularies,
                        ddi_from_pairs(hyper.get("ddi_pairs", []), sizes[2]))


def restore(artifact) -> tuple[TrainedModels, dict[str, Any], np.ndarray]:
    """Models, vocabularies and DDI matrix of a loaded medication-change artifact."""
    from model_zoo.baselines import BaselineConfig, DualNN, Frequency, GruHistory, SimNN

    loaded = load_micron(artifact)
    hyper = artifact.hyperparameters
    sizes = tuple(hyper["sizes"])
    baseline_config = BaselineConfig.from_dict(hyper["baselines"])
    kwargs = dict(dim=baseline_config.dim, hidden=baseline_config.hidden,
                  dropout=baseline_config.dropout)
    simnn, dualnn, gru = SimNN(*sizes, **kwargs), DualNN(*sizes, **kwargs), GruHistory(*sizes, **kwargs)
    simnn.load_state_dict(artifact.weights["simnn"])
    dualnn.load_state_dict(artifact.weights["dualnn"])
    gru.load_state_dict(artifact.weights["gru"])
    gru.threshold = float(hyper["gru_threshold"])
    tuned = (artifact.thresholds or {}).get("baselines") or hyper.get("change_thresholds") or {}
    simnn.change_thresholds = tuple(tuned["simnn"]) if tuned.get("simnn") else None
    dualnn.change_thresholds = tuple(tuned["dualnn"]) if tuned.get("dualnn") else None
    frequency = Frequency(artifact.weights["frequency"]["prevalence"].numpy(),
                          hyper["frequency_threshold"])
    for model in (simnn, dualnn, gru):
        model.eval()
    models = TrainedModels(
        micron=loaded.model, thresholds=loaded.thresholds, simnn=simnn,
        dualnn=dualnn, gru=gru, frequency=frequency,
        seconds_per_epoch=dict(hyper.get("seconds_per_epoch", {})),
        best_epoch=dict(hyper.get("best_epoch", {})), params=dict(hyper.get("params", {})))
    return models, loaded.vocabularies, loaded.ddi
