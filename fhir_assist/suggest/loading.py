"""Which suggester serves an artifact directory: the artifact's `kind` decides, so a models
directory can hold a MERA coder where the structured ranker usually sits, or a LAMO recommender
in MICRON's place, and the services answer with the same cards."""
from __future__ import annotations

from pathlib import Path

from .placement import AUTO, model_device


def load_coder(path: str | Path, device: str = AUTO):
    """A `CodingSuggester` (ranker, text coder) or a `MeraCoder`, by the artifact's kind, on the
    device `suggest.placement` picks for it."""
    from fhir_assist.tasks.language_models import read_kind

    if read_kind(path) == "mera":
        from fhir_assist.suggest.mera import MeraCoder
        return MeraCoder.load(path, model_device(device, language_model=True))
    from fhir_assist.suggest.coding import CodingSuggester
    return CodingSuggester.load(str(path), model_device(device, language_model=False))


def load_medication_recommender(path: str | Path, device: str = AUTO):
    """A `MedicationChangeSuggester` (MICRON, on the CPU) or a `LamoRecommender` (on the device
    `suggest.placement` picks), by the artifact's kind."""
    from fhir_assist.tasks.language_models import read_kind

    if read_kind(path) == "lamo":
        from fhir_assist.suggest.lamo import LamoRecommender
        return LamoRecommender.load(path, model_device(device, language_model=True))
    from fhir_assist.suggest.medication import MedicationChangeSuggester
    return MedicationChangeSuggester.load(str(path))
