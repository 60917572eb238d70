"""Store what the per-encounter cut needs in a coding artifact trained before it was stored.

An artifact's validation cut-offs (`thresholds.cutoffs`) carry, per model and head, the
Platt calibration of the scores (the per-encounter RE@R cut sums calibrated probabilities)
and the validation precision curve (the write-back floor). Artifacts trained before these
were stored cut at the raw scores' expected recall, which is far too long a list. Given the
cohort the artifact was trained on, this refits both on the same validation patients and
writes them into `config.json`; the weights, and so the artifact's version, stay as they are.
"""
from __future__ import annotations

import json

from fhir_assist.recipes import RecipeError
from fhir_assist.tasks.coding.encounters import collect_encounters, input_stratum
from fhir_assist.tasks.coding.evaluation import cutoffs_for
from fhir_assist.tasks.coding.spaces import text_strata

__all__ = ["store_cut_data"]


def _strata(model, encounters) -> list[int]:
    if model.reads_notes:
        return text_strata(model.sequences(encounters))
    return [input_stratum(e.n_inputs) for e in encounters]


def store_cut_data(artifact_dir: str, data: str, *, progress: bool = False) -> dict:
    """Refit the main model's calibration and precision curves on its validation patients of
    `data` and store them; returns the billing head's new cut information."""
    from fhir_assist.tasks.artifacts import load_artifact
    from fhir_assist.tasks.coding.models import load_model
    from fhir_assist.tasks.cohort import load_cohort

    artifact = load_artifact(artifact_dir)
    model = load_model(artifact)
    seed = int(artifact.hyperparameters.get("split_seed", 0))
    cohort = load_cohort(data, progress)
    encounters, _ = collect_encounters(cohort.timelines, seed, with_notes=model.reads_notes, progress=progress)
    validation = [e for e in encounters if e.split == "validation"]
    if not validation:
        raise RecipeError(f"no validation encounters in {data} (split seed {seed})")
    stored = ((artifact.thresholds or {}).get("cutoffs") or {}).get(model.name) or {}
    target = float((stored.get("billing") or {}).get("target_recall", 0.9))
    fresh = cutoffs_for(model.scores(validation)[model.name], model.labels.encode(validation),
                        _strata(model, validation), model.labels.slices(), target)
    # The global K is recomputed from the same patients: a different K means another cohort.
    if stored.get("billing") and stored["billing"].get("overall") != fresh["billing"]["overall"]:
        raise RecipeError(f"{data} is not the cohort {artifact.path} was trained on (validation K "
                          f"{fresh['billing']['overall']}, stored {stored['billing'].get('overall')})")
    path = artifact.path / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["thresholds"]["cutoffs"][model.name] = fresh
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return fresh["billing"]
