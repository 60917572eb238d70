"""`fhir-assist train micron` and `fhir-assist evaluate` for medication-change artifacts.

Cohort directory → patient timelines (adapter) → vocabularies and index lists →
MICRON and its baselines (model_zoo) → artifact (registry) → Table-2 report.

The split is by patient (`encode.split_patients`, seed = --seed); vocabularies
are built on the training patients only, so codes first seen in validation or
test land in the out-of-vocabulary slot. The baselines (SimNN, DualNN, GRU,
Frequency; RepeatLast needs no weights) are trained by the same `train` call
on the same split and stored in the same artifact, so `evaluate` compares every
model on identical test patients. `evaluate --seeds N` retrains all of them
with N initialisation seeds on the artifact's split and vocabularies.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fhir_assist.cli import CliError

log = logging.getLogger(__name__)

TASK = "medication-change"
MODEL_ORDER = ("MICRON", "SimNN", "DualNN", "RepeatLast", "GRU", "Frequency")
METRIC_KEYS = ("ddi_rate", "jaccard", "f1", "prauc", "err_add", "err_remove", "removals")
DX_MIN_COUNT = 2      # diagnosis/procedure codes seen once in training share the OOV slot
PROC_MIN_COUNT = 2


# ----------------------------------------------------------------------------- data

@dataclass
class EncodedCohort:
    """Index-encoded splits, the vocabularies and what was left out."""

    vocabularies: dict[str, Any]                     # name → encode.Vocabulary
    splits: dict[str, list] = field(default_factory=dict)   # name → [PatientSequence]
    fingerprint: str = ""
    skipped_visits: int = 0
    patients: int = 0
    unknown_codes: int = 0

    @property
    def sizes(self) -> tuple[int, int, int]:
        return (len(self.vocabularies["dx"]), len(self.vocabularies["proc"]),
                len(self.vocabularies["med"]))


def configure_threads() -> None:
    """One intra-op thread unless the user asked otherwise: these models are small,
    and on a shared or busy CPU extra threads spin-wait far longer than they help."""
    import torch

    if not any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                           "FHIR_ASSIST_TORCH_THREADS")):
        torch.set_num_threads(1)
    elif os.environ.get("FHIR_ASSIST_TORCH_THREADS"):
        torch.set_num_threads(max(1, int(os.environ["FHIR_ASSIST_TORCH_THREADS"])))


def load_timelines(data_dir: str, progress: bool = True):
    """Timelines of a cohort directory, with a one-line ingest summary on stderr."""
    from fhir_assist.adapter import timeline

    path = Path(data_dir)
    if not path.exists():
        raise CliError(f"cohort directory {data_dir!r} does not exist")
    try:
        cohort = timeline.load_cohort(str(path), progress=progress)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read cohort {data_dir!r}: {exc}") from None
    if not cohort.timelines:
        raise CliError(f"no patients found in {data_dir!r} (expected Bulk Data NDJSON or FHIR Bundles)")
    summary = getattr(cohort.report, "summary", None)
    if callable(summary) and progress:
        print(summary(), file=sys.stderr)
    return cohort.timelines


def _visit_tokens(visit) -> tuple[list[str], list[str], list[str]]:
    from fhir_assist.adapter import encode

    return (encode.diagnosis_tokens(visit), encode.procedure_tokens(visit),
            encode.medication_tokens(visit))


def usable_visits(timeline) -> list:
    """Visits that carry a diagnosis, a procedure or a medication (empty encounters
    carry no signal and would make a spurious 'change')."""
    return [v for v in timeline.visits if v.diagnoses or v.procedures or v.medications]


def build_vocabularies(train_timelines: Sequence) -> dict[str, Any]:
    from fhir_assist.adapter.encode import Vocabulary

    dx, proc, med = [], [], []
    for timeline in train_timelines:
        for visit in usable_visits(timeline):
            d, p, m = _visit_tokens(visit)
            dx.append(d)
            proc.append(p)
            med.append(m)
    return {"dx": Vocabulary.build(dx, min_count=DX_MIN_COUNT),
            "proc": Vocabulary.build(proc, min_count=PROC_MIN_COUNT),
            "med": Vocabulary.build(med, min_count=1)}


def encode_timeline(timeline, vocabularies: dict[str, Any]):
    """PatientSequence of one timeline, and the number of out-of-vocabulary codes."""
    from model_zoo.micron import PatientSequence

    dx, proc, med = [], [], []
    unknown = 0
    for visit in usable_visits(timeline):
        d, p, m = _visit_tokens(visit)
        d_idx = vocabularies["dx"].encode(d)
        p_idx = vocabularies["proc"].encode(p)
        m_idx = vocabularies["med"].encode(m)
        unknown += d_idx.count(0) + p_idx.count(0) + m_idx.count(0)
        dx.append(sorted(set(d_idx)))
        proc.append(sorted(set(p_idx)))
        med.append(sorted(set(m_idx) - {0}))  # a medicine outside M cannot be predicted
    return PatientSequence(timeline.patient_id, dx, proc, med), unknown


def data_fingerprint(timelines: Sequence) -> str:
    """sha256 of the cohort's coded content (patient ids, visit tokens), order independent."""
    digest = hashlib.sha256()
    for timeline in sorted(timelines, key=lambda t: t.patient_id):
        digest.update(timeline.patient_id.encode())
        for visit in usable_visits(timeline):
            d, p, m = _visit_tokens(visit)
            digest.update(json.dumps([sorted(d), sorted(p), sorted(m)]).encode())
    return digest.hexdigest()


def encode_cohort(timelines: Sequence, split_seed: int,
                  vocabularies: dict[str, Any] | None = None) -> EncodedCohort:
    """Split by patient, build (or reuse) vocabularies on train, encode every split."""
    from fhir_assist.adapter import encode

    assignment = encode.split_patients([t.patient_id for t in timelines], split_seed)
    by_split: dict[str, list] = {"train": [], "validation": [], "test": []}
    for timeline in timelines:
        by_split[assignment[timeline.patient_id]].append(timeline)
    if vocabularies is None:
        vocabularies = build_vocabularies(by_split["train"])
    encoded = EncodedCohort(vocabularies=vocabularies, patients=len(timelines),
                            fingerprint=data_fingerprint(timelines))
    for name, members in by_split.items():
        sequences = []
        for timeline in members:
            sequence, unknown = encode_timeline(timeline, vocabularies)
            encoded.unknown_codes += unknown
            encoded.skipped_visits += len(timeline.visits) - len(sequence)
            if len(sequence):
                sequences.append(sequence)
        encoded.splits[name] = sequences
    return encoded


def ddi_matrix(med_vocabulary) -> np.ndarray:
    """|M|×|M| 0/1 interaction matrix over the medication vocabulary (OOV row empty)."""
    from mappings import rxnorm

    tokens = med_vocabulary.tokens
    matrix = np.zeros((len(tokens), len(tokens)), dtype=np.float32)
    if len(tokens) > 1:
        inner = np.asarray(rxnorm.ddi_matrix(list(tokens[1:])), dtype=np.float32)
        matrix[1:, 1:] = inner
    return matrix


def ddi_from_pairs(pairs: Sequence[Sequence[int]], size: int) -> np.ndarray:
    matrix = np.zeros((size, size), dtype=np.float32)
    for i, j in pairs:
        matrix[i, j] = matrix[j, i] = 1.0
    return matrix


def ddi_to_pairs(matrix: np.ndarray) -> list[list[int]]:
    rows, cols = np.nonzero(np.triu(matrix, k=1))
    return [[int(i), int(j)] for i, j in zip(rows, cols)]


# ----------------------------------------------------------------------------- models

@dataclass
class TrainedModels:
    """Everything `train` produces for one initialisation seed."""

    micron: Any
    thresholds: Any
    simnn: Any
    dualnn: Any
    gru: Any
    frequency: Any
    seconds_per_epoch: dict[str, float]
    best_epoch: dict[str, int]
    params: dict[str, int]


def default_configs(epochs: int | None, ddi_loss: bool, ddi_weight: float | None = None,
                    ddi_penalty: float | None = None, threshold_rule: str | None = None,
                    ddi_stop_below: float | None = None):
    from model_zoo.baselines import BaselineConfig
    from model_zoo.micron import MicronConfig

    micron_config = MicronConfig(ddi_loss=ddi_loss)
    baseline_config = BaselineConfig()
    if ddi_weight is not None:
        if ddi_weight < 0:
            raise CliError("--ddi-weight must not be negative")
        micron_config.lambda_ddi = ddi_weight
    if ddi_penalty is not None:
        if ddi_penalty < 0:
            raise CliError("--ddi-penalty must not be negative")
        micron_config.threshold_ddi_penalty = baseline_config.threshold_ddi_penalty = ddi_penalty
    if ddi_stop_below is not None:
        if not 0 <= ddi_stop_below <= 1:
            raise CliError("--ddi-stop-below must be between 0 and 1")
        micron_config.ddi_stop_below = ddi_stop_below
    if threshold_rule is not None:
        micron_config.threshold_rule = threshold_rule
    if epochs is not None:
        if epochs < 1:
            raise CliError("--epochs must be at least 1")
        micron_config.epochs = baseline_config.epochs = epochs
    return micron_config, baseline_config


def train_models(data: EncodedCohort, ddi: np.ndarray, micron_config, baseline_config, *,
                 seed: int, device, progress: bool = True) -> TrainedModels:
    from model_zoo import baselines
    from model_zoo.micron import count_parameters, train_micron

    train, validation = data.splits["train"], data.splits["validation"]
    if not any(len(p) > 1 for p in train):
        raise CliError("no training patient has two or more visits: medication-change models "
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


# ----------------------------------------------------------------------------- artifact

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
        "vocabulary_min_count": {"dx": DX_MIN_COUNT, "proc": PROC_MIN_COUNT, "med": 1},
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


def restore(artifact) -> tuple[TrainedModels, dict[str, Any], np.ndarray]:
    """Models, vocabularies and DDI matrix of a loaded medication-change artifact."""
    from fhir_assist.adapter.encode import Vocabulary
    from model_zoo.baselines import BaselineConfig, DualNN, Frequency, GruHistory, SimNN
    from model_zoo.micron import Micron, MicronConfig
    from model_zoo.thresholds import MicronThresholds

    hyper = artifact.hyperparameters
    sizes = tuple(hyper["sizes"])
    micron_config = MicronConfig.from_dict(hyper["micron"])
    baseline_config = BaselineConfig.from_dict(hyper["baselines"])
    micron = Micron.from_config(sizes, micron_config)
    micron.load_state_dict(artifact.weights["micron"])
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
    for model in (micron, simnn, dualnn, gru):
        model.eval()
    models = TrainedModels(
        micron=micron, thresholds=MicronThresholds.from_dict(artifact.thresholds), simnn=simnn,
        dualnn=dualnn, gru=gru, frequency=frequency,
        seconds_per_epoch=dict(hyper.get("seconds_per_epoch", {})),
        best_epoch=dict(hyper.get("best_epoch", {})), params=dict(hyper.get("params", {})))
    vocabularies = {name: Vocabulary.from_dict(data) for name, data in artifact.vocabularies.items()}
    ddi = ddi_from_pairs(hyper.get("ddi_pairs", []), sizes[2])
    return models, vocabularies, ddi


# ----------------------------------------------------------------------------- commands

def describe_thresholds(thresholds) -> str:
    """One line on the chosen δ1/δ2 (global pair, per-medicine spread, removal recall)."""
    text = (f"thresholds ({thresholds.rule}): δ1 = {thresholds.add:.3f}, δ2 = {thresholds.remove:.3f}")
    if thresholds.mode == "per-medicine" and thresholds.per_medicine_remove:
        adds = np.asarray(thresholds.per_medicine_add[1:])
        removes = np.asarray(thresholds.per_medicine_remove[1:])
        spread = (f"δ1 {adds.min():.2f} for all" if adds.min() == adds.max()
                  else f"δ1 {adds.min():.2f}–{adds.max():.2f}")
        text += (f"; per medicine {spread}, δ2 {removes.min():.2f}–"
                 f"{removes.max():.2f}, {int((removes > 0).sum())}/{removes.size} medicines can be "
                 f"stopped, {thresholds.tuned_medicines} tuned alone")
    if thresholds.removal_recall is not None:
        text += f"; validation stops caught {thresholds.removal_recall:.1%}"
    if thresholds.validation_ddi_rate is not None:
        text += f"; validation DDI rate {thresholds.validation_ddi_rate:.4f}"
    if thresholds.ddi_stop_below > 0:
        text += f"; of two interacting medicines, one scored below {thresholds.ddi_stop_below:g} is stopped"
    return text


def _device(requested):
    from model_zoo.train import pick_device

    try:
        return pick_device(requested)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _test_rows(results: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for name in MODEL_ORDER:
        if name in results:
            metrics = results[name]
            row = {"model": name}
            row.update({key: _finite(metrics[key]) for key in METRIC_KEYS})
            row["params"] = int(metrics["params"])
            row["s_per_epoch"] = _finite(round(float(metrics["s_per_epoch"]), 4))
            rows.append(row)
    return rows


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def train_command(args) -> int:
    configure_threads()
    device = _device(getattr(args, "device", None))
    progress = True
    micron_config, baseline_config = default_configs(args.epochs, not args.no_ddi_loss,
                                                     getattr(args, "ddi_weight", None),
                                                     getattr(args, "ddi_penalty", None),
                                                     getattr(args, "threshold_rule", None),
                                                     getattr(args, "ddi_stop_below", None))
    started = time.perf_counter()
    timelines = load_timelines(args.data, progress)
    data = encode_cohort(timelines, args.seed)
    if len(data.vocabularies["med"]) < 2:
        raise CliError(f"no medications (RxNorm MedicationRequests) found in {args.data!r}; "
                       "MICRON predicts medication changes")
    ddi = ddi_matrix(data.vocabularies["med"])
    print(f"training on {len(data.splits['train'])} patients "
          f"({len(data.splits['validation'])} validation, {len(data.splits['test'])} test); "
          f"{data.sizes[0]} diagnosis, {data.sizes[1]} procedure, {data.sizes[2]} medication tokens; "
          f"{int(ddi.sum() / 2)} interacting pairs; device {device}", file=sys.stderr)
    models = train_models(data, ddi, micron_config, baseline_config, seed=args.seed, device=device,
                          progress=progress)
    test = evaluate_models(models, data.splits["test"], ddi, progress=progress)
    validation = evaluate_models(models, data.splits["validation"], ddi)
    metrics = {"test_patients": sum(len(p) > 1 for p in data.splits["test"]),
               "test": _test_rows(test), "validation": _test_rows(validation)}
    path = save(args.out, data, models, ddi, micron_config, baseline_config, args.seed, args.seed,
                metrics)
    print(format_table(metrics["test_patients"], {name: test[name] for name in test},
                       title="test patients"))
    print(f"\nartifact written to {path} in {time.perf_counter() - started:.1f} s")
    print(describe_thresholds(models.thresholds))
    return 0


def evaluate_command(args) -> int:
    from model_zoo import registry

    configure_threads()
    device = _device(getattr(args, "device", None))
    if args.seeds < 1:
        raise CliError("--seeds must be at least 1")
    try:
        artifact = registry.load(args.artifact)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(f"cannot load artifact {args.artifact!r}: {exc}") from None
    models, vocabularies, ddi = restore(artifact)
    hyper = artifact.hyperparameters
    progress = not args.json or sys.stderr.isatty()
    timelines = load_timelines(args.data, progress=progress)
    data = encode_cohort(timelines, int(hyper["split_seed"]), vocabularies)
    test = data.splits["test"]
    scored = sum(len(p) > 1 for p in test)
    if scored == 0:
        raise CliError(f"no test patient of {args.data!r} has two or more visits (split seed "
                       f"{hyper['split_seed']}); nothing to evaluate")

    runs = [evaluate_models(models, test, ddi, progress=progress)]
    observed = [evaluate_models(models, test, ddi, anchor="observed")]
    if args.seeds > 1:
        from model_zoo.baselines import BaselineConfig
        from model_zoo.micron import MicronConfig

        micron_config = MicronConfig.from_dict(hyper["micron"])
        baseline_config = BaselineConfig.from_dict(hyper["baselines"])
        first = int(hyper.get("init_seed", 0))
        for seed in range(first + 1, first + args.seeds):
            print(f"retraining with seed {seed} ({seed - first + 1}/{args.seeds})", file=sys.stderr)
            retrained = train_models(data, ddi, micron_config, baseline_config, seed=seed,
                                     device=device, progress=progress)
            runs.append(evaluate_models(retrained, test, ddi))
            observed.append(evaluate_models(retrained, test, ddi, anchor="observed"))
    summary = summarize(runs)
    summary_observed = summarize(observed)
    same_data = data.fingerprint == artifact.config.get("data_fingerprint")
    if args.json:
        document = {
            "task": TASK,
            "test_patients": scored,
            "models": _json_rows(summary, args.seeds),
            "seeds": args.seeds,
            "protocol": "base set = previous predicted set, first visit given (MICRON paper)",
            "models_observed_base": _json_rows(summary_observed, args.seeds),
            "artifact": str(artifact.path),
            "same_data_as_training": same_data,
            "thresholds": {"add": models.thresholds.add, "remove": models.thresholds.remove,
                           "rule": models.thresholds.rule,
                           "removal_recall": models.thresholds.removal_recall,
                           # artifacts from before DDI control searched on F1 alone
                           "ddi_penalty": hyper["micron"].get("threshold_ddi_penalty", 0.0),
                           "validation_ddi_rate": models.thresholds.validation_ddi_rate,
                           "ddi_stop_below": models.thresholds.ddi_stop_below},
        }
        print(json.dumps(document))
    else:
        note = "" if same_data else "  (cohort differs from the training data)"
        print(format_table(scored, summary, title=f"test patients{note}", seeds=args.seeds))
        print()
        print(format_table(scored, summary_observed, seeds=args.seeds,
                           title="test patients, base set = previous prescription"))
        print(describe_thresholds(models.thresholds))
    return 0


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
    rows = _test_rows(summary)
    if seeds > 1:
        for row in rows:
            for key in METRIC_KEYS:
                row[f"{key}_std"] = _finite(summary[row["model"]][f"{key}_std"])
    return rows


def format_table(patients: int, results: dict[str, dict[str, float]], *, title: str,
                 seeds: int = 1) -> str:
    """Table-2-style text table."""
    headers = ("Model", "DDI", "Jaccard", "F1", "PRAUC", "Err(add)", "Err(remove)", "Removed",
               "Params", "s/epoch")
    lines = []
    names = [n for n in MODEL_ORDER if n in results] + [n for n in results if n not in MODEL_ORDER]
    for name in names:
        metrics = results[name]
        cells = [name]
        for key in METRIC_KEYS:
            value = metrics[key]
            digits = 3 if key.startswith("err") else 0 if key == "removals" else 4
            text = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
                else f"{value:.{digits}f}"
            if seeds > 1 and f"{key}_std" in metrics and text != "n/a":
                text += f" ± {metrics[key + '_std']:.{digits}f}"
            cells.append(text)
        cells.append(f"{int(metrics['params']):,}")
        cells.append(f"{metrics['s_per_epoch']:.2f}s" if metrics["s_per_epoch"] else "-")
        lines.append(cells)
    widths = [max(len(headers[i]), *(len(row[i]) for row in lines)) for i in range(len(headers))]
    out = [f"Medication change on {patients} {title}" +
           (f", mean ± std over {seeds} seeds" if seeds > 1 else ""),
           "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for row in lines:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out)
