"""Training recipes: cohort → examples (via `fhir_assist.tasks`) → trained models →
artifact, each reading top to bottom. The CLI calls them; the service never does.

    ranker             the structured multitask ICD ranker and its baselines
    text_coder         the note-based ICD/CCS coder and its baselines
    coding             `train icd-ranker|text-coder` and the bundled demo coding models
    coding_evaluation  `evaluate` of a coding artifact: report, seeds, feedback retraining
    micron             MICRON and its baselines: training, evaluation, `train micron`
    micron_evaluation  `evaluate` of a medication-change artifact
"""
from fhir_assist.tasks.errors import TaskError


class RecipeError(TaskError):
    """A recipe cannot run on these data or settings (too small a cohort, a bad setting)."""


def device_for(requested):
    """The torch device to train on (cuda when present unless one is named)."""
    from model_zoo.devices import pick_device

    try:
        return pick_device(requested)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None


__all__ = ["RecipeError", "device_for"]
