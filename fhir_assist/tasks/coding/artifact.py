"""Coding artifacts: what a trained structured ranker or text coder needs at inference
and evaluation (a bundle), written to and read from the registry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_assist.tasks.coding import TASK
from fhir_assist.tasks.coding.encounters import INPUT_BUCKETS, NOTE_BUCKETS
from fhir_assist.tasks.coding.spaces import FeatureSpace, LabelSpace


@dataclass
class RankerBundle:
    """Everything a trained structured ranker needs at inference and evaluation."""
    features: FeatureSpace
    labels: LabelSpace
    ranker: Any
    frequency: Any
    logistic: Any
    hyper: dict
    thresholds: dict
    cutoffs: dict
    history: list



@dataclass
class TextBundle:
    notes: Any                      # encode.Vocabulary of note tokens
    labels: LabelSpace
    coder: Any
    frequency: Any
    logistic: Any
    hyper: dict
    thresholds: dict
    cutoffs: dict
    history: list



def _half(state: dict) -> dict:
    """Baseline weights stored as float16: half the size, no measurable ranking change."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def save_ranker(bundle: RankerBundle, out: str | Path, *, seed: int, select: str, metrics=None,
                data_fingerprint=None, cohort_stats=None, keep_baselines: bool = True,
                half: bool = False) -> Path:
    """keep_baselines=False leaves the logistic weights out (small bundled demo models);
    `evaluate` then refits it on the evaluation cohort's training patients. half=True
    stores the ranker in float16 (loaded back as float32)."""
    config = {
        "kind": "icd-ranker", "model": "multitask-ranker", "split_seed": seed, "select": select,
        "ranker": bundle.ranker.config.to_dict(), "training": bundle.hyper,
        "heads": bundle.labels.heads, "input_buckets": list(INPUT_BUCKETS),
        "history": bundle.history, "cohort": dict(cohort_stats or {}),
    }
    vocabularies = {**bundle.features.vocabularies(), **bundle.labels.vocabularies()}
    return _save_coding_artifact(bundle, out, "ranker", bundle.ranker, config, vocabularies,
                                 metrics=metrics, data_fingerprint=data_fingerprint,
                                 keep_baselines=keep_baselines, half=half)


def save_text(bundle: TextBundle, out: str | Path, *, seed: int, select: str, metrics=None,
              data_fingerprint=None, cohort_stats=None, keep_baselines: bool = True,
              half: bool = False) -> Path:
    config = {
        "kind": "text-coder", "model": "text-coder", "split_seed": seed, "select": select,
        "text_coder": bundle.coder.config.to_dict(), "training": bundle.hyper,
        "architecture": bundle.hyper.get("architecture", "bigru"),
        "heads": bundle.labels.heads, "note_buckets": list(NOTE_BUCKETS),
        "history": bundle.history, "cohort": dict(cohort_stats or {}),
    }
    vocabularies = {"notes": bundle.notes.to_dict(), **bundle.labels.vocabularies()}
    return _save_coding_artifact(bundle, out, "text-coder", bundle.coder, config, vocabularies,
                                 metrics=metrics, data_fingerprint=data_fingerprint,
                                 keep_baselines=keep_baselines, half=half)


def _save_coding_artifact(bundle, out, name: str, model, config: dict, vocabularies: dict, *,
                          metrics, data_fingerprint, keep_baselines: bool, half: bool) -> Path:
    """The model, its frequency floor and (optionally) its logistic peer as one artifact."""
    from model_zoo import registry

    state = model.state_dict()
    weights = {name: _half(state) if half else state, "frequency": bundle.frequency.state_dict()}
    if bundle.logistic is not None and keep_baselines:
        weights["logistic"] = _half(bundle.logistic.state_dict())
    return registry.save_artifact(out, task=TASK, weights=weights, config=config,
                                  vocabularies=vocabularies,
                                  thresholds={"f1": bundle.thresholds, "cutoffs": bundle.cutoffs},
                                  metrics=metrics, data_fingerprint=data_fingerprint)


def _float_state(state: dict) -> dict:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def _baselines(artifact, n_inputs: int, n_labels: int) -> tuple[Any, Any]:
    """The stored frequency floor and, when the artifact keeps one, the logistic peer."""
    from model_zoo import classical

    freq = classical.FrequencyRanker(n_labels)
    freq.load_state_dict(_float_state(artifact.weights["frequency"]))
    logistic = None
    if "logistic" in artifact.weights:
        logistic = classical.LogisticRanker(n_inputs, n_labels)
        logistic.load_state_dict(_float_state(artifact.weights["logistic"]))
        logistic.eval()
    return freq.eval(), logistic


def _stored(artifact) -> tuple[dict, dict, dict, list]:
    """(training settings, μF1 thresholds, RE@R cut-offs, training history) of an artifact."""
    hp, th = artifact.hyperparameters, artifact.thresholds or {}
    return hp.get("training", {}), th.get("f1", {}), th.get("cutoffs", {}), hp.get("history", [])


def load_ranker(artifact) -> RankerBundle:
    from model_zoo import icd_ranker

    hp = artifact.hyperparameters
    features = FeatureSpace.from_vocabularies(artifact.vocabularies)
    labels = LabelSpace.from_vocabularies(artifact.vocabularies)
    ranker = icd_ranker.IcdRanker(icd_ranker.RankerConfig.from_dict(hp["ranker"]))
    ranker.load_state_dict(_float_state(artifact.weights["ranker"]))
    freq, logistic = _baselines(artifact, features.size, labels.size)
    return RankerBundle(features, labels, ranker.eval(), freq, logistic, *_stored(artifact))


def load_text(artifact) -> TextBundle:
    from fhir_assist.adapter.encode import Vocabulary
    from model_zoo import text_coder

    hp = artifact.hyperparameters
    vocab = Vocabulary.from_dict(artifact.vocabularies["notes"])
    labels = LabelSpace.from_vocabularies(artifact.vocabularies)
    if hp.get("architecture", "bigru") == "tfidf":
        from model_zoo import tfidf_coder
        coder = tfidf_coder.TfidfCoder(tfidf_coder.TfidfCoderConfig.from_dict(hp["text_coder"]))
    else:
        coder = text_coder.TextCoder(text_coder.TextCoderConfig.from_dict(hp["text_coder"]))
    coder.load_state_dict(_float_state(artifact.weights["text-coder"]))
    # the logistic peer reads a bag of the `bow_size` most frequent note tokens
    n_inputs = hp["training"]["bow_size"] if "logistic" in artifact.weights else 0
    freq, logistic = _baselines(artifact, n_inputs, labels.size)
    return TextBundle(vocab, labels, coder.eval(), freq, logistic, *_stored(artifact))
