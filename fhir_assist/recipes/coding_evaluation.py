"""Recipe: `evaluate` of a coding artifact — its model and baselines on the test encounters
of a cohort (the artifact's split), optionally retrained with several seeds or with coder
feedback on the same split."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from fhir_assist.recipes import RecipeError, device_for
from fhir_assist.recipes.coding import RECIPES, print_stats
from fhir_assist.tasks.coding import TASK
from fhir_assist.tasks.coding.encounters import Encounter, collect_encounters
from fhir_assist.tasks.coding.evaluation import head_metrics, to_numpy
from fhir_assist.tasks.coding.feedback import Feedback
from fhir_assist.tasks.coding.models import CodingModel, from_bundle, load_model
from fhir_assist.tasks.cohort import load_cohort


@dataclass
class CodingEvaluation:
    report: dict                                  # what `evaluate --json` prints
    scores: dict = field(default_factory=dict)    # model → [N, labels] scores (first seed)
    labels: torch.Tensor | None = None            # [N, labels] truth
    slices: dict = field(default_factory=dict)    # head → label columns


def refit_logistic(model: CodingModel, encounters: list[Encounter], device, progress: bool):
    """The logistic baseline fitted on the training patients of `encounters`, with the
    artifact's vocabularies and label space."""
    from model_zoo import classical

    train = [e for e in encounters if e.split == "train"]
    if not train:
        return None
    settings = model.bundle.settings
    return classical.fit_logistic(model.baseline_inputs(train), model.labels.encode(train),
                                  l2=settings.logistic_l2, epochs=settings.logistic_epochs, device=device,
                                  progress=progress).eval()


def _mean_levels(runs: list[dict]) -> dict:
    out = {}
    for head in runs[0]:
        out[head] = {}
        for key in runs[0][head]:
            vals = [r[head][key] for r in runs if r[head][key] is not None]
            out[head][key] = float(np.mean(vals)) if vals else None
    return out


def _retrain(model: CodingModel, encounters, seed: int, select: str, device, progress: bool,
             **options):
    train = RECIPES[model.kind].train
    options.update(model.retrain_options())
    return from_bundle(model.kind, train(encounters, settings=model.bundle.settings, seed=seed, select=select,
                                         device=device, progress=progress, **options))


def _retrain_seeds(model: CodingModel, encounters, test, seeds, split_seed, select, device, progress):
    """Retrain with `seeds` initialisation seeds on the same split; per-seed scores + std."""
    per_model: dict[str, list] = defaultdict(list)
    for s in range(seeds):
        retrained = _retrain(model, encounters, split_seed + s, select, device, progress)
        for name, sc in retrained.scores(test, device).items():
            per_model[name].append(sc)
    y = model.labels.encode(test)
    slices = model.labels.slices()
    thresholds = model.bundle.thresholds
    std = {}
    for name, runs in per_model.items():
        metrics = [head_metrics(r, y, slices, thresholds.get(name)) for r in runs]
        std[name] = {h: {k: (float(np.std([m[h][k] for m in metrics if m[h][k] is not None]))
                             if any(m[h][k] is not None for m in metrics) else None)
                         for k in metrics[0][h]} for h in metrics[0]}
    return dict(per_model), std


def validation_curves(model: CodingModel, encounters: list[Encounter], cutoffs: dict, device) -> dict:
    """model name → the per-encounter cut's threshold curve, fitted on the validation encounters
    on each model's calibrated billing scores (baselines refitted here have no stored one, and
    artifacts trained before the rule existed neither; the test encounters are never used)."""
    from model_zoo import recall_cut

    val = [e for e in encounters if e.split == "validation"]
    if not val:
        return {}
    billing = model.labels.slices()["billing"]
    y = to_numpy(model.labels.encode(val))[:, billing]
    curves = {}
    for name, s in model.scores(val, device).items():
        calibration = (((cutoffs or {}).get(name) or {}).get("billing") or {}).get("calibration")
        calibrated = recall_cut.apply_platt(to_numpy(s)[:, billing], calibration)
        curves[name] = recall_cut.recall_threshold_curve(calibrated, y)
    return curves


def _model_entries(scores, std, y, slices, thresholds, cutoffs=None, target: float = 0.9,
                   min_probability: float | None = None, curves: dict | None = None) -> list[dict]:
    from model_zoo import recall_cut

    entries = []
    for name, s in scores.items():
        if isinstance(s, list):      # several seeds: mean of the per-seed metrics
            levels = _mean_levels([head_metrics(si, y, slices, thresholds.get(name)) for si in s])
        else:
            levels = head_metrics(s, y, slices, thresholds.get(name))
        entry = {"model": name, "levels": levels}
        # Coder effort at the cut: the per-encounter rule on calibrated scores and the global K.
        billing = ((cutoffs or {}).get(name) or {}).get("billing") or {}
        first = to_numpy(s[0] if isinstance(s, list) else s)
        entry["cut"] = recall_cut.cut_report(
            first[:, slices["billing"]], to_numpy(y)[:, slices["billing"]],
            calibration=billing.get("calibration"), global_k=billing.get("overall"), target_recall=target,
            min_probability=min_probability, recall_thresholds=(curves or {}).get(name))
        if name in std:
            entry["std"] = std[name]
        entries.append(entry)
    return entries


def evaluate(artifact_name: str, data: str, *, feedback_path: str | None = None, seeds: int = 1,
             device=None, progress: bool = True, target_recall: float = 0.9,
             fuse_with: str | None = None, min_probability: float | None = None) -> CodingEvaluation:
    from fhir_assist.tasks.artifacts import load_artifact

    device = device_for(device)
    try:
        artifact = load_artifact(artifact_name)
    except (FileNotFoundError, ValueError) as exc:
        raise RecipeError(f"cannot load {artifact_name!r}: {exc}") from None
    hp = artifact.hyperparameters
    seed, select = int(hp.get("split_seed", 0)), hp.get("select", "ndcg")
    model = load_model(artifact)
    feedback = Feedback.read(feedback_path) if feedback_path else None
    cohort = load_cohort(data, progress)
    encounters, stats = collect_encounters(cohort.timelines, seed, feedback=feedback,
                                           with_notes=model.reads_notes, progress=progress)
    test = [e for e in encounters if e.split == "test"]
    if not test:
        raise RecipeError(f"--data {data}: no coded test encounters (split seed {seed}); the "
                          "cohort is too small or has no ICD diagnoses")
    if model.bundle.logistic is None:     # bundled demo models ship without it: refit on this cohort
        model.bundle.logistic = refit_logistic(model, encounters, device, progress)
    unknown: Counter = Counter()
    y = model.labels.encode(test, unknown)
    scores = model.scores(test, device, unknown)
    thresholds = dict(model.bundle.thresholds)
    cutoffs = dict(model.bundle.cutoffs or {})
    std = {}
    if seeds > 1:
        scores, std = _retrain_seeds(model, encounters, test, seeds, seed, select, device, progress)
    if feedback is not None:
        if model.reads_notes:
            raise RecipeError("--feedback applies to icd-ranker artifacts")
        print_stats(f"feedback {feedback_path}:", feedback.stats | stats)
        retrained = _retrain(model, encounters, seed, select, device, progress, train_baselines=False)
        name = f"{model.name}+feedback"
        scores[name] = retrained.scores(test, device)[model.name]
        thresholds[name] = retrained.bundle.thresholds[model.name]
        cutoffs[name] = retrained.bundle.cutoffs[model.name]
    slices = model.labels.slices()
    report = {"task": TASK, "test_encounters": len(test), "artifact": str(artifact.path),
              "kind": model.kind, "split_seed": seed, "unknown": dict(unknown),
              "models": _model_entries(scores, std, y, slices, thresholds, cutoffs, target_recall, min_probability,
                                       validation_curves(model, encounters, cutoffs, device) if seeds == 1 else {})}
    if fuse_with:
        from fhir_assist.recipes import coding_fusion
        if model.kind != "icd-ranker":
            raise RecipeError("--fuse-with takes a text-coder artifact and applies to an icd-ranker artifact")
        try:
            text = load_model(load_artifact(fuse_with))
        except (FileNotFoundError, ValueError) as exc:
            raise RecipeError(f"cannot load {fuse_with!r}: {exc}") from None
        entries, report["fusion"] = coding_fusion.fused_report(model, text, cohort, seed, target_recall,
                                                               device, progress, min_probability)
        report["models"] += entries
    first = {k: (v[0] if isinstance(v, list) else v) for k, v in scores.items()}
    return CodingEvaluation(report, first, y, slices)
