"""The fused coding list on a cohort: fit the stacker on validation visits, report on test.

`fhir-assist evaluate RANKER --data DIR --fuse-with TEXT_CODER` adds a `fused` model to the
report: the structured ranker, the text coder (where the visit has a note) and the
previous-visit / problem-list evidence combined into one calibrated probability per billing
code, with its `cut` figures and its calibration error before (each source's calibrated
scores, the higher one where both speak) and after fusion. The single sources are reported
on the same visits for comparison.
"""
from __future__ import annotations

import numpy as np
import torch

from fhir_assist.recipes import RecipeError, device_for
from fhir_assist.suggest import fusion as F
from fhir_assist.tasks.coding.encounters import collect_encounters
from fhir_assist.tasks.coding.evaluation import to_numpy
from model_zoo import recall_cut
from model_zoo.fusion import Stacker
from model_zoo.thresholds import recall_cutoff


def _billing(model) -> dict:
    return ((model.bundle.cutoffs or {}).get(model.name) or {}).get("billing") or {}


def _scores_by_key(model, encounters, device) -> dict:
    """(patient, encounter) → the model's calibrated billing probabilities."""
    probs = to_numpy(model.scores(encounters, device)[model.name])[:, model.labels.slices()["billing"]]
    probs = recall_cut.apply_platt(probs, _billing(model).get("calibration"))
    return {(e.patient_id, e.encounter_id): row for e, row in zip(encounters, probs)}


def source_rows(ranker, text, timelines, encounters, text_encounters, device):
    """Feature rows, labels and each source's calibrated billing scores for `encounters`."""
    ranker_scores = _scores_by_key(ranker, encounters, device)
    text_scores = _scores_by_key(text, text_encounters, device) if text_encounters else {}
    src, dst = F.text_columns(text.labels, ranker.labels)
    history = {}
    for timeline in timelines:
        for eid, value in F.history_columns(timeline.visits, ranker.labels).items():
            history[(timeline.patient_id, eid)] = value
    n, c = len(encounters), ranker.labels.slices()["billing"].stop - ranker.labels.slices()["billing"].start
    r = np.stack([ranker_scores[(e.patient_id, e.encounter_id)] for e in encounters])
    t = np.zeros((n, c))
    known = np.zeros((n, c), dtype=bool)
    for i, e in enumerate(encounters):
        row = text_scores.get((e.patient_id, e.encounter_id))
        if row is not None:
            t[i, dst] = row[src]
            known[i, dst] = True
    hist = [history.get((e.patient_id, e.encounter_id), (set(), set())) for e in encounters]
    y = to_numpy(ranker.labels.encode(encounters))[:, ranker.labels.slices()["billing"]]
    return F.feature_rows(r, t, known, hist), y, r, np.where(known, np.maximum(r, t), r), known


def fit_fusion(ranker, text, cohort, seed: int, device, progress: bool, splits=("validation", "test")):
    """(stacker fitted on the validation visits, {split: source_rows(...)})."""
    if ranker.kind != "icd-ranker" or text.kind != "text-coder":
        raise RecipeError(f"fusion takes an icd-ranker and a text-coder, got {ranker.kind} and {text.kind}")
    encounters, _ = collect_encounters(cohort.timelines, seed, progress=progress)
    noted, _ = collect_encounters(cohort.timelines, seed, with_notes=True, progress=progress)
    parts = {}
    for split in splits:
        chosen = [e for e in encounters if e.split == split]
        if not chosen:
            raise RecipeError(f"no coded {split} encounters in the cohort (split seed {seed})")
        parts[split] = source_rows(ranker, text, cohort.timelines, chosen,
                                   [e for e in noted if e.split == split], device)
    rows_va, y_va = parts["validation"][:2]
    return Stacker.fit(rows_va.reshape(-1, rows_va.shape[-1]), y_va.reshape(-1), seed=seed), parts


def fused_report(ranker, text, cohort, seed: int, target: float, device, progress: bool) -> tuple[list, dict]:
    """(model entries for the report, the fusion's fitted weights and calibration)."""
    stacker, parts = fit_fusion(ranker, text, cohort, seed, device, progress)
    rows_va, y_va = parts["validation"][:2]
    rows_te, y_te, ranker_te, merged_te, known_te = parts["test"]
    fused = stacker.predict(rows_te.reshape(-1, rows_te.shape[-1])).reshape(y_te.shape)
    fused_va = stacker.predict(rows_va.reshape(-1, rows_va.shape[-1])).reshape(y_va.shape)
    global_k = recall_cutoff(fused_va, y_va, target)
    identity = {"a": 1.0, "b": 0.0}
    entries = [
        {"model": "fused", "levels": {}, "cut": recall_cut.cut_report(fused, y_te, calibration=identity, global_k=global_k,
                                                        target_recall=target)},
        {"model": "ranker+text (higher score, before fusion)", "levels": {},
         "cut": recall_cut.cut_report(merged_te, y_te, calibration=identity,
                                      global_k=recall_cutoff(parts["validation"][3], y_va, target),
                                      target_recall=target)},
    ]
    info = {
        **stacker.to_dict(),
        "test_encounters": int(y_te.shape[0]),
        "test_encounters_with_note": int(known_te.any(axis=1).sum()),
        "ece_before": round(recall_cut.expected_calibration_error(merged_te, y_te), 5),
        "ece_after": round(recall_cut.expected_calibration_error(fused, y_te), 5),
        "ece_ranker": round(recall_cut.expected_calibration_error(ranker_te, y_te), 5),
    }
    for column, name in ((3, "previous-visit (rule)"), (4, "problem-list (rule)")):
        # The sceptic's rule: recommend exactly the codes recorded before.
        flags = rows_te[:, :, column]
        entries.append({"model": name, "levels": {}, "cut": {"target_recall": None, "per_encounter": recall_cut.cut_metrics(
            flags + 1e-3 * ranker_te, y_te, flags.sum(axis=1).astype(int)), "global_k": None, "ece": None}})
    return entries, info


def train(ranker_path: str, text_path: str, data: str, out: str, *, target_recall: float = 0.9,
          device=None, progress: bool = True) -> dict:
    """Fit the stacker on the validation visits and write the "coding-fusion" artifact."""
    from fhir_assist.tasks.artifacts import load_artifact
    from fhir_assist.tasks.coding.models import load_model
    from fhir_assist.tasks.cohort import load_cohort
    from model_zoo import registry

    device = device_for(device)
    try:
        ranker_artifact, text_artifact = load_artifact(ranker_path), load_artifact(text_path)
        ranker, text = load_model(ranker_artifact), load_model(text_artifact)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise RecipeError(f"cannot load the artifacts to fuse: {exc}") from None
    seed = int(ranker_artifact.hyperparameters.get("split_seed", 0))
    cohort = load_cohort(data, progress)
    stacker, parts = fit_fusion(ranker, text, cohort, seed, device, progress, splits=("validation",))
    rows_va, y_va = parts["validation"][:2]
    fused_va = stacker.predict(rows_va.reshape(-1, rows_va.shape[-1])).reshape(y_va.shape)
    billing = {"overall": recall_cutoff(fused_va, y_va, target_recall), "target_recall": target_recall,
               "calibration": {"a": 1.0, "b": 0.0},
               "precision_curve": recall_cut.precision_curve(fused_va, y_va)}
    config = {"kind": "coding-fusion", "split_seed": seed, "stacker": stacker.to_dict(),
              "ranker_version": ranker_artifact.version, "text_version": text_artifact.version,
              "ece_validation": round(recall_cut.expected_calibration_error(fused_va, y_va), 5)}
    weights = {"fusion": {"weights": torch.tensor(stacker.weights), "bias": torch.tensor([stacker.bias])}}
    vocabularies = {"labels-billing": ranker.labels.vocabularies()["labels-billing"]}
    path = registry.save_artifact(out, task="icd-coding", weights=weights, config=config,
                                  vocabularies=vocabularies, thresholds={"cutoffs": {"fused": {"billing": billing}}})
    return {"artifact": str(path), **stacker.to_dict(), "global_k": billing["overall"],
            "ece_validation": config["ece_validation"]}
