"""The fused coding list on a cohort: fit the stacker on validation visits, report on test.

`fhir-assist evaluate RANKER --data DIR --fuse-with TEXT_CODER` adds a `fused` model to the
report: the structured ranker, the text coder (where the visit has a note) and the
previous-visit / earlier-visit / problem-list evidence combined into one probability per
billing code by a stacker, then recalibrated per rank band of the encounter's list (both
fitted on the validation visits), with its `cut` figures and its calibration error before
fusion (each source's calibrated scores, the higher one where both speak), after the stacker
and after the rank-band recalibration. The single sources and the record-copying rules are
reported on the same visits for comparison.
"""
from __future__ import annotations

import numpy as np
import torch

from fhir_assist.recipes import RecipeError, device_for
from fhir_assist.suggest import fusion as F
from fhir_assist.tasks.coding.encounters import collect_encounters
from fhir_assist.tasks.coding.evaluation import to_numpy
from model_zoo import recall_cut
from model_zoo.fusion import FEATURES, Stacker
from model_zoo.rank_calibration import RankBandCalibration, band_summary
from model_zoo.thresholds import recall_cutoff


def _billing(model) -> dict:
    return ((model.bundle.cutoffs or {}).get(model.name) or {}).get("billing") or {}


def _scores_by_key(model, encounters, device) -> dict:
    """(patient, encounter) → the model's calibrated billing probabilities."""
    probs = to_numpy(model.scores(encounters, device)[model.name])[:, model.labels.slices()["billing"]]
    probs = recall_cut.apply_platt(probs, _billing(model).get("calibration"))
    return {(e.patient_id, e.encounter_id): row for e, row in zip(encounters, probs)}


def source_rows(ranker, text, timelines, encounters, text_encounters, device):
    """(feature rows, labels, ranker scores, ranker/text higher score, text-known mask, text
    scores): each source's calibrated billing scores for `encounters`."""
    ranker_scores = _scores_by_key(ranker, encounters, device)
    text_scores = _scores_by_key(text, text_encounters, device) if text_encounters else {}
    src, dst = F.text_columns(text.labels, ranker.labels)
    history = {}
    for timeline in timelines:
        for eid, value in F.history_columns(timeline.visits, ranker.labels, timeline).items():
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
    hist = [history.get((e.patient_id, e.encounter_id), (set(), set(), set())) for e in encounters]
    y = to_numpy(ranker.labels.encode(encounters))[:, ranker.labels.slices()["billing"]]
    return F.feature_rows(r, t, known, hist), y, r, np.where(known, np.maximum(r, t), r), known, t


def fit_fusion(ranker, text, cohort, seed: int, device, progress: bool, splits=("validation", "test")):
    """(stacker and rank-band calibration fitted on the validation visits, {split: source_rows(...)})."""
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
    stacker = Stacker.fit(rows_va.reshape(-1, rows_va.shape[-1]), y_va.reshape(-1), seed=seed)
    stacked_va = stacker.predict(rows_va.reshape(-1, rows_va.shape[-1])).reshape(y_va.shape)
    return stacker, RankBandCalibration.fit(stacked_va, y_va, seed=seed), parts


def _predict(stacker, bands, rows) -> tuple[np.ndarray, np.ndarray]:
    """(stacker probabilities, the same recalibrated by rank band) of [N, C, F] rows."""
    stacked = stacker.predict(rows.reshape(-1, rows.shape[-1])).reshape(rows.shape[:2])
    return stacked, bands.apply(stacked)


def fused_report(ranker, text, cohort, seed: int, target: float, device, progress: bool,
                 min_probability: float | None = None) -> tuple[list, dict]:
    """(model entries for the report, the fusion's fitted weights and calibration)."""
    stacker, bands, parts = fit_fusion(ranker, text, cohort, seed, device, progress)
    rows_va, y_va = parts["validation"][:2]
    rows_te, y_te, ranker_te, merged_te, known_te, _ = parts["test"]
    stacked, fused = _predict(stacker, bands, rows_te)
    stacked_va, fused_va = _predict(stacker, bands, rows_va)
    identity = {"a": 1.0, "b": 0.0}

    def cut(scores, scores_va, labels=y_te, labels_va=y_va):
        # every rule's parameters from the validation visits: the global K and the thresholds
        return recall_cut.cut_report(scores, labels, calibration=identity, target_recall=target,
                                     global_k=recall_cutoff(scores_va, labels_va, target),
                                     min_probability=min_probability,
                                     recall_thresholds=recall_cut.recall_threshold_curve(scores_va, labels_va))

    noted, noted_va = known_te.any(axis=1), parts["validation"][4].any(axis=1)
    entries = [
        {"model": "fused", "levels": {}, "cut": cut(fused, fused_va)},
        {"model": "fused, stacker only (no rank-band recalibration)", "levels": {}, "cut": cut(stacked, stacked_va)},
        {"model": "ranker+text (higher score, before fusion)", "levels": {},
         "cut": cut(merged_te, parts["validation"][3])},
    ]
    if noted.any() and noted_va.any():
        # The text coder alone reads only visits with a note: its cut on those.
        text_te, text_va = (np.where(p[4], p[5], 0.0) for p in (parts["test"], parts["validation"]))
        entries.append({"model": "text-coder (visits with a note)", "levels": {},
                        "cut": cut(text_te[noted], text_va[noted_va], y_te[noted], y_va[noted_va])})
    info = {
        **stacker.to_dict(),
        "rank_calibration": bands.to_dict(),
        "test_encounters": int(y_te.shape[0]),
        "test_encounters_with_note": int(noted.sum()),
        "ece_before": round(recall_cut.expected_calibration_error(merged_te, y_te), 5),
        "ece_stacked": round(recall_cut.expected_calibration_error(stacked, y_te), 5),
        "ece_after": round(recall_cut.expected_calibration_error(fused, y_te), 5),
        "ece_ranker": round(recall_cut.expected_calibration_error(ranker_te, y_te), 5),
        "bands_stacked": band_summary(stacked, y_te, bands.edges),
        "bands_after": band_summary(fused, y_te, bands.edges),
    }
    for feature, name in (("previous_visit", "previous-visit (rule)"), ("earlier_visit", "earlier-visits (rule)"),
                          ("problem_list", "problem-list (rule)")):
        # The sceptic's rule: recommend exactly the codes recorded before.
        flags = rows_te[:, :, FEATURES.index(feature)]
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
    stacker, bands, parts = fit_fusion(ranker, text, cohort, seed, device, progress, splits=("validation",))
    rows_va, y_va = parts["validation"][:2]
    stacked_va, fused_va = _predict(stacker, bands, rows_va)
    billing = {"overall": recall_cutoff(fused_va, y_va, target_recall), "target_recall": target_recall,
               "calibration": {"a": 1.0, "b": 0.0},
               "precision_curve": recall_cut.precision_curve(fused_va, y_va),
               "recall_thresholds": recall_cut.recall_threshold_curve(fused_va, y_va)}
    config = {"kind": "coding-fusion", "split_seed": seed, "stacker": stacker.to_dict(),
              "rank_calibration": bands.to_dict(),
              "ranker_version": ranker_artifact.version, "text_version": text_artifact.version,
              "ece_validation_stacked": round(recall_cut.expected_calibration_error(stacked_va, y_va), 5),
              "ece_validation": round(recall_cut.expected_calibration_error(fused_va, y_va), 5)}
    weights = {"fusion": {"weights": torch.tensor(stacker.weights), "bias": torch.tensor([stacker.bias])}}
    vocabularies = {"labels-billing": ranker.labels.vocabularies()["labels-billing"]}
    path = registry.save_artifact(out, task="icd-coding", weights=weights, config=config,
                                  vocabularies=vocabularies, thresholds={"cutoffs": {"fused": {"billing": billing}}})
    return {"artifact": str(path), **stacker.to_dict(), "global_k": billing["overall"],
            "ece_validation_stacked": config["ece_validation_stacked"], "ece_validation": config["ece_validation"]}
