"""Coding suggestions from a MERA artifact (a causal LM with one token per ICD code): the same
`CodingSuggestions` the structured ranker gives, so the coding service, its cards and the
write-back treat both alike.

The visit is verbalised exactly as in training (`tasks.verbalise`); every billing code is scored
at the first generated position, and the list is cut where the end-of-visit token (EOV) falls —
MERA's learned per-encounter cut. A code's score is σ(code − EOV), recalibrated on validation
visits when the artifact stores a calibration (Platt), so the write-back floor reads the same way
as for the other coders. A language model gives no per-input attribution: evidence is empty.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from fhir_assist.adapter.visits import Code, PatientTimeline, Visit
from fhir_assist.suggest.coding import CodeSuggestion, CodingSuggestions

EOV_RULE = "eov"


class MeraCoder:
    """A loaded MERA artifact, answering like `CodingSuggester`."""

    kind = "mera"
    model_name = "mera"
    discovery_phrase = ("with a MERA-style language model (and the discharge-note coder when notes exist) and "
                        "recommends the codes it ranks above its end-of-visit token")

    def __init__(self, path: str | Path, device=None):
        from fhir_assist.tasks.language_models import load_served_lm

        served = load_served_lm(path, "mera", "a MERA coder", device)
        self.path, self.device, self.model, self.config = served.path, served.device, served.model, served.config
        self.model_version, self.max_prompt_tokens = served.version, served.max_prompt_tokens
        config = served.config
        levels = config["levels"]
        tokens = list(config["code_tokens"])
        self._billing = np.array([i for i, t in enumerate(tokens) if "billing" in levels[t]], dtype=np.int64)
        self._tokens = [tokens[i] for i in self._billing]
        serving = config.get("serving") or {}
        self.calibration = serving.get("calibration")
        self.precision_curve = serving.get("precision_curve")
        self.target_recall = 0.9           # what the card's sentence quotes; the cut is EOV's
        self._descriptions: dict[str, str] = {}
        self._describe_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device=None) -> "MeraCoder":
        return cls(path, device)

    # ------------------------------------------------------------------ scores
    def margins(self, visit: Visit, patient: PatientTimeline | None = None) -> np.ndarray:
        """Per billing code, its score minus EOV's at the first generated position."""
        from fhir_assist.tasks import verbalise

        timeline, index = verbalise.timeline_at(visit, patient)
        scores = self.model.score([verbalise.coding_prompt(timeline, index)], self.max_prompt_tokens)[0]
        return (scores[self._billing] - scores[-1]).numpy().astype(np.float64)

    def calibrated(self, margins: np.ndarray) -> np.ndarray:
        from model_zoo.recall_cut import apply_platt, sigmoid

        return apply_platt(sigmoid(margins), self.calibration)

    def write_floor(self, precision: float, level: str = "billing") -> float:
        """Lowest calibrated score right `precision` of the time on validation (without a stored
        curve, `precision` itself: 0.5 is EOV's own line on uncalibrated scores)."""
        from model_zoo.recall_cut import precision_floor

        return precision_floor(self.precision_curve, precision)

    # ------------------------------------------------------------------ suggestions
    def suggest(self, visit: Visit, patient: PatientTimeline | None = None, top: int = 50,
                level: str = "billing", evidence: bool = True, *, target_recall: float | None = None,
                rule: str = "per-encounter") -> CodingSuggestions:
        """The `top` best billing codes; those above EOV recommended (at least one, as in
        training's `eov_cut`). `rule` and `target_recall` are accepted for the common call and
        not used: MERA's cut is its own."""
        from mappings.codesystems import ICD10CM, detect_icd_system

        if level != "billing":
            raise ValueError("a MERA coder ranks billing codes only")
        margins = self.margins(visit, patient)
        scores = self.calibrated(margins)
        order = np.argsort(-margins, kind="stable")[:top]
        cut = max(1, int((margins > 0).sum()))
        suggestions = []
        for rank, column in enumerate(order.tolist(), 1):
            token = self._tokens[column]
            node = token[len("[dx:"):-1]
            suggestions.append(CodeSuggestion(
                system=detect_icd_system(node) or ICD10CM, code=node, display=self._describe(token),
                level="billing", score=float(scores[column]), rank=rank, recommended=rank <= cut))
        target = float(target_recall if target_recall is not None else self.target_recall)
        return CodingSuggestions(suggestions, cut, target, self.model_version,
                                 list(visit.unmapped_medications), expected_recall=None,
                                 cut_rule=EOV_RULE, n_inputs=_n_inputs(visit))

    def add_evidence(self, result: CodingSuggestions, codes) -> dict:
        return {}

    def explain(self, visit: Visit, code: str | Code, patient: PatientTimeline | None = None,
                level: str = "billing") -> list:
        return []

    def warm_up(self, visit: Visit) -> None:
        self.suggest(visit, None, top=10, evidence=False)

    def _describe(self, token: str) -> str:
        from fhir_assist.tasks import verbalise

        with self._describe_lock:
            if token not in self._descriptions:
                self._descriptions[token] = verbalise.token_description(token)
            return self._descriptions[token]


def _n_inputs(visit: Visit) -> int:
    """What the prompt tells of the visit itself: its medications, procedures, reasons, notes."""
    return len(visit.medications) + len(visit.procedures) + len(visit.reason_codes) + len(visit.notes)
