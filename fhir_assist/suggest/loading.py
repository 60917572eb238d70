"""Which suggester serves an artifact directory: the artifact's `kind` decides, so a models
directory can hold a MERA coder where the structured ranker usually sits, or a LAMO recommender
in MICRON's place, and the services answer with the same cards."""
from __future__ import annotations

from pathlib import Path


def load_coder(path: str | Path):
    """A `CodingSuggester` (ranker, text coder) or a `MeraCoder`, by the artifact's kind."""
    from fhir_assist.tasks.language_models import read_kind

    if read_kind(path) == "mera":
        from fhir_assist.suggest.mera import MeraCoder
        return MeraCoder.load(path)
    from fhir_assist.suggest.coding import CodingSuggester
    return CodingSuggester.load(str(path))


def load_medication_recommender(path: str | Path):
    """A `MedicationChangeSuggester` (MICRON) or a `LamoRecommender`, by the artifact's kind."""
    from fhir_assist.tasks.language_models import read_kind

    if read_kind(path) == "lamo":
        from fhir_assist.suggest.lamo import LamoRecommender
        return LamoRecommender.load(path)
    from fhir_assist.suggest.medication import MedicationChangeSuggester
    return MedicationChangeSuggester.load(str(path))
