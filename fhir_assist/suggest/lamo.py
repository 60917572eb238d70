"""Medication-change suggestions from a LAMO artifact (a LoRA-tuned causal LM that answers a
visit's medication set): the same `MedicationChanges` MICRON gives, so the medication service
and its cards treat both alike.

LAMO keeps no per-patient state: each call verbalises the visit with the visits before it (as in
training) and reads one probability per medication. The recommended set is what reaches the
threshold calibrated on validation (over-prescription control); of two interacting drugs in that
set the lower-scored one is left out (DDI control). Changes are measured from the medications the
visit lists, else from the previous visit's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fhir_assist.adapter.visits import Code, PatientTimeline, Visit
from fhir_assist.suggest.medication import RXNORM, MedicationChanges, _ingredient_names

METHOD_NOTE = ("Suggested by a LAMO-style language model (LoRA-tuned) from the visit's diagnoses, procedures "
               "and note and the previous visit's medications (score: the model's probability that the "
               "patient should be on the medication; the recommended set is what reaches the threshold "
               "calibrated against over-prescription, {threshold:.2f}, less the lower-scored drug of any "
               "interacting pair).")


class LamoRecommender:
    """A loaded LAMO artifact, answering like `MedicationChangeSuggester` (without state)."""

    kind = "lamo"
    stateful = False
    discovery_phrase = ("from a LAMO-style language model reading the visit, its note and the earlier visits, "
                        "with over-prescription and interaction control,")

    def __init__(self, path: str | Path, device=None):
        from fhir_assist.tasks.language_models import load_served_lm

        served = load_served_lm(path, "lamo", "a LAMO recommender", device)
        self.path, self.device, self.model, self.config = served.path, served.device, served.model, served.config
        self.model_version, self.max_prompt_tokens = served.version, served.max_prompt_tokens
        config = served.config
        self.rxcuis = list(config["medications"])
        self.index = {rx: i for i, rx in enumerate(self.rxcuis)}
        self.threshold = float(config["threshold"])
        self.method_note = METHOD_NOTE.format(threshold=self.threshold)
        self._names = _ingredient_names()

    @classmethod
    def load(cls, path: str | Path, device=None) -> "LamoRecommender":
        return cls(path, device)

    def new_state(self) -> bytes:
        return b""

    def probabilities(self, visit: Visit, history: Sequence[Visit] | None = None,
                      patient: PatientTimeline | None = None) -> np.ndarray:
        import torch

        from fhir_assist.tasks import verbalise

        timeline, index = verbalise.timeline_at(visit, patient, list(history or []))
        scores = self.model.score([verbalise.medication_prompt(timeline, index)], self.max_prompt_tokens)
        return torch.sigmoid(scores[0]).numpy().astype(np.float64)

    def update(self, state: bytes | None, visit: Visit, history: Sequence[Visit] | None = None,
               patient: PatientTimeline | None = None) -> MedicationChanges:
        """Suggestions for `visit` (`state` is ignored: LAMO reads the record each time)."""
        probs = self.probabilities(visit, history, patient)
        chosen, stops = self._without_interactions(np.flatnonzero(probs >= self.threshold), probs)
        base = set(visit.medications) or set(_previous_medications(visit, history, patient))
        known = {rx for rx in base if rx in self.index}

        def rows(rxcuis) -> list[tuple[str, str, float]]:
            return sorted(((rx, self._name(rx), round(float(probs[self.index[rx]]), 4)) for rx in rxcuis),
                          key=lambda row: -row[2])

        recommended = {self.rxcuis[j] for j in chosen}
        unknown = [Code(RXNORM, rx, self._names.get(rx)) for rx in sorted(base - known)]
        return MedicationChanges(
            add=rows(recommended - base), remove=rows(known - recommended)[::-1], keep=rows(recommended & base),
            interaction_stops={rx: partner for rx, partner in stops.items() if rx in known},
            state=b"", unknown_codes=unknown + list(visit.unmapped_medications),
            model_version=self.model_version, thresholds=(self.threshold, self.threshold))

    def _without_interactions(self, candidates: np.ndarray, probs: np.ndarray) -> tuple[list[int], dict[str, str]]:
        """Most probable first, a drug is kept unless it interacts with one already kept;
        the left-out drug → the kept partner it clashes with."""
        from mappings import rxnorm

        kept: list[int] = []
        stops: dict[str, str] = {}
        for j in sorted(candidates.tolist(), key=lambda j: -probs[j]):
            clash = next((k for k in kept if rxnorm.interacts(self.rxcuis[j], self.rxcuis[k])), None)
            if clash is None:
                kept.append(j)
            else:
                stops[self.rxcuis[j]] = self.rxcuis[clash]
        return kept, stops

    def warm_up(self, visit: Visit) -> None:
        self.update(None, visit)

    def _name(self, rxcui: str) -> str:
        return self._names.get(rxcui, rxcui)


def _previous_medications(visit: Visit, history: Sequence[Visit] | None,
                          patient: PatientTimeline | None) -> list[str]:
    from fhir_assist.tasks import verbalise

    timeline, index = verbalise.timeline_at(visit, patient, list(history or []))
    return list(timeline.visits[index - 1].medications) if index else []
