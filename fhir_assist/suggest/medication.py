"""Medication-change suggestions for one new visit, from a MICRON artifact.

    suggester = MedicationChangeSuggester.load("micron")      # name or directory
    changes = suggester.update(state_bytes_or_None, visit, history=previous_visits)
    store.put_micron_state(tenant, patient, changes.state, ttl_s)

`update` applies Eq. 11–14 of the MICRON paper to the new visit only: its cost
does not depend on how many visits the patient had. The base set the changes
are measured from is the medications the visit lists when it lists any (what the
patient is on now), else the set carried in the state. The returned state
remembers the visit's own medications when listed (what was really prescribed),
else the predicted set.

When no (usable) state is given, `history` (earlier visits, oldest first) is
replayed to rebuild it; without history the visit is treated as the first one.
States of an older format or another model version are discarded the same way.

Idempotent per encounter: the state keeps the encounter id (hashed) of the visit
that produced it and the state before that visit, so calling `update` again for
the same encounter (a CDS client firing order-select repeatedly) recomputes from
the earlier state and returns the same suggestions and the same state bytes; a
new encounter advances.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fhir_assist.adapter.visits import Code, Visit

log = logging.getLogger(__name__)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass
class MedicationChanges:
    """add / remove / keep: (rxcui, name, score) with score = σ(m̃) ∈ [0, 1]."""

    add: list[tuple[str, str, float]] = field(default_factory=list)
    remove: list[tuple[str, str, float]] = field(default_factory=list)
    keep: list[tuple[str, str, float]] = field(default_factory=list)
    ddi_pairs: list[tuple[str, str]] = field(default_factory=list)  # within keep ∪ add
    interaction_stops: dict[str, str] = field(default_factory=dict)  # stopped rxcui → its partner
    state: bytes = b""
    unknown_codes: list[Code] = field(default_factory=list)
    model_version: str = ""
    thresholds: tuple[float, float] = (0.0, 0.0)   # (δ1 add, δ2 remove)
    replayed_visits: int = 0                        # history visits used to rebuild the state
    repeated_encounter: bool = False                # same encounter as the state's last visit


class MedicationChangeSuggester:
    """A loaded MICRON model plus its vocabularies, thresholds and DDI table."""

    def __init__(self, artifact) -> None:
        import torch

        from fhir_assist.tasks.medication.artifact import load_micron
        from model_zoo.micron import MicronPredictor

        loaded = load_micron(artifact)
        if not os.environ.get("OMP_NUM_THREADS") and torch.get_num_threads() > 1:
            # one visit is a few small matrix-vector products: threads only add latency
            torch.set_num_threads(1)
        self.artifact = artifact
        self.vocabularies = loaded.vocabularies
        self.thresholds = loaded.thresholds
        self.predictor = MicronPredictor(loaded.model, self.thresholds, loaded.ddi)
        self.model_version = artifact.version
        self._names = _ingredient_names()

    @classmethod
    def load(cls, artifact: Any = "micron") -> "MedicationChangeSuggester":
        """From an `Artifact`, an artifact directory, or a registry name."""
        from fhir_assist.tasks.artifacts import load_artifact

        if isinstance(artifact, (str, Path)):
            artifact = load_artifact(artifact)
        return cls(artifact)

    # ------------------------------------------------------------------ state
    def new_state(self) -> bytes:
        """The state of a patient never seen: empty bytes (`update` starts fresh)."""
        return b""

    def _encode(self, visit: Visit, unknown: list[Code]) -> tuple[list[int], list[int], list[int]]:
        """Index lists by the task's visit encoder (the one training uses); what the
        vocabularies do not know is appended to `unknown`."""
        from fhir_assist.tasks.medication.encoding import encode_visit

        encoded = encode_visit(visit, self.vocabularies)
        unknown.extend(encoded.unknown_codes)
        unknown.extend(Code(RXNORM, rxcui, self._names.get(rxcui))
                       for rxcui in encoded.unknown_medications)
        unknown.extend(visit.unmapped_medications)
        return encoded.dx, encoded.proc, encoded.med

    def _restore(self, state: bytes | None):
        from model_zoo.micron import MicronState, StateMismatch

        if not state:
            return None
        try:
            return MicronState.from_bytes(bytes(state), tag=self.predictor.tag,
                                          n_med=self.predictor.n_med, dim=self.predictor.dim)
        except StateMismatch as exc:
            log.info("discarding stored MICRON state: %s", exc)
            return None

    # ------------------------------------------------------------------ update
    def update(self, state: bytes | None, visit: Visit,
               history: Sequence[Visit] | None = None) -> MedicationChanges:
        """Suggestions for `visit` and the patient's next state (see module doc)."""
        from fhir_assist.tasks.medication.encoding import is_usable
        from model_zoo.micron import encounter_key

        current = self._restore(state)
        replayed = 0
        # the same encounter again (order-select fires repeatedly): the predictor
        # recomputes from the state before it, so nothing is applied twice
        repeat = current is not None and bool(visit.encounter_id) and \
            current.encounter == encounter_key(visit.encounter_id)
        if current is None and history:
            for earlier in history:
                if earlier.encounter_id and earlier.encounter_id == visit.encounter_id:
                    continue
                if not is_usable(earlier):
                    continue
                dx, proc, med = self._encode(earlier, [])
                step = self.predictor.update(current, dx, proc, observed=med if med else None,
                                             base=med if med else None,
                                             encounter=earlier.encounter_id)
                current = step.state
                replayed += 1
        unknown: list[Code] = []
        dx, proc, med = self._encode(visit, unknown)
        listed = med if visit.medications else None
        step = self.predictor.update(current, dx, proc, observed=listed, base=listed,
                                     encounter=visit.encounter_id)
        scores = step.scores
        medication_tokens = self.vocabularies["med"].tokens

        def describe(indices) -> list[tuple[str, str, float]]:
            rows = []
            for index in indices:
                rxcui = medication_tokens[index]
                rows.append((rxcui, self._names.get(rxcui, rxcui), round(float(scores[index]), 4)))
            return sorted(rows, key=lambda row: -row[2])

        add = describe(step.added)
        remove = sorted(describe(step.removed), key=lambda row: row[2])
        keep = describe(step.kept)
        recommended = sorted(step.predicted)
        pairs = []
        for a_pos, a in enumerate(recommended):
            for b in recommended[a_pos + 1:]:
                if b in self.predictor.partners[a]:
                    pairs.append((medication_tokens[a], medication_tokens[b]))
        stops = {medication_tokens[m]: medication_tokens[partner]
                 for m, partner in step.interaction_stops.items()}
        return MedicationChanges(add=add, remove=remove, keep=keep, ddi_pairs=pairs,
                                 interaction_stops=stops,
                                 state=step.state.to_bytes(), unknown_codes=unknown,
                                 model_version=self.model_version,
                                 thresholds=(self.thresholds.add, self.thresholds.remove),
                                 replayed_visits=replayed, repeated_encounter=repeat)


def _ingredient_names() -> dict[str, str]:
    try:
        from mappings import rxnorm

        return {rxcui: ingredient.name for rxcui, ingredient in rxnorm.ingredients().items()}
    except Exception as exc:  # names are cosmetic: fall back to RxCUIs
        log.warning("RxNorm ingredient names unavailable (%s); showing RxCUIs", exc)
        return {}
