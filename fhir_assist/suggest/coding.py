"""Coding suggestions for one encounter: ranked billing codes, the RE@R cut-off, evidence.

    suggester = CodingSuggester.load("icd-ranker")          # or a path, or "text-coder"
    result = suggester.suggest(visit, patient, top=50)
    for s in result.suggestions:
        print(s.rank, s.code, s.display, s.score, "recommended" if s.recommended else "more")

Scores are calibrated probabilities (Platt scaling fitted on validation, stored in the
artifact). The list is cut per encounter (`rule="per-encounter"`, the default): the
shortest prefix whose expected recall Σ_{i≤k} p_i / Σ_i p_i reaches the target recall
(default 90 %), so a visit with one clear code gets one or two. `rule="global-k"` keeps
the older cut: the list length K that reached the target recall on validation encounters
"like this one" (same bucket of number of input codes, or of note length). Suggestions
within the cut are *recommended*; the rest are offered as "more". Evidence names the
medications, procedures or note passages that pushed each code up (occlusion /
gradient × input, `model_zoo.attribution`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fhir_assist.adapter.visits import Code, PatientTimeline, Visit
from fhir_assist.fhir.tokens import code_token

__all__ = ["CodeSuggestion", "CodingSuggestions", "CodingSuggester", "CUT_RULES"]

CUT_RULES = ("per-encounter", "expected-recall", "global-k")

Evidence = list[tuple[str, str, float]]   # (kind, label, weight)


@dataclass
class CodeSuggestion:
    system: str
    code: str
    display: str | None
    level: str
    score: float
    rank: int
    recommended: bool
    evidence: Evidence = field(default_factory=list)


@dataclass
class CodingSuggestions:
    suggestions: list[CodeSuggestion]
    cutoff_k: int | None
    target_recall: float
    model_version: str
    unknown_codes: list[Code] = field(default_factory=list)
    expected_recall: float | None = None      # Σ p over the recommended / Σ p over all codes
    score_total: float | None = None          # Σ p over all codes: the expected number of codes
    cut_rule: str = "per-encounter"
    cut_threshold: float | None = None        # the per-encounter rule's probability threshold, if used
    n_inputs: int = 0                          # codes or note tokens the model read for this visit
    # What `CodingSuggester.add_evidence` needs to explain codes after the fact.
    model_input: Any = field(default=None, repr=False, compare=False)
    columns: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def recommended(self) -> list[CodeSuggestion]:
        return [s for s in self.suggestions if s.recommended]

    @property
    def more(self) -> list[CodeSuggestion]:
        return [s for s in self.suggestions if not s.recommended]


class CodingSuggester:
    """Wraps an "icd-coding" artifact (structured multitask ranker or text coder)."""

    def __init__(self, artifact, device: torch.device | str | None = None, evidence_top: int = 5):
        from fhir_assist.tasks.coding.models import load_model
        from model_zoo.devices import pick_device

        self.artifact = artifact
        self.device = pick_device(device)
        self.coding_model = load_model(artifact)
        self.kind = self.coding_model.kind
        self.bundle = self.coding_model.bundle
        self.model_name = self.coding_model.name
        self.model = self.coding_model.network.to(self.device).eval()
        self.labels = self.bundle.labels
        self.evidence_top = evidence_top
        cut = (self.bundle.cutoffs or {}).get(self.model_name, {})
        self._cutoffs = cut
        self.target_recall = float(next(iter(cut.values()), {}).get("target_recall", 0.9)) if cut else 0.9
        self._descriptions: dict[tuple[str, str], str | None] = {}
        self._column_codes: dict[int, tuple[str, str, str, str | None]] = {}
        self._feature_names: dict[tuple[str, str], str] = {}

    @classmethod
    def load(cls, artifact: str | Path | Any = "icd-ranker", device=None) -> "CodingSuggester":
        from fhir_assist.tasks.artifacts import load_artifact

        if not hasattr(artifact, "hyperparameters"):
            artifact = load_artifact(artifact)
        if artifact.task != "icd-coding":
            raise ValueError(f"artifact {artifact.path} is a {artifact.task!r} model, not icd-coding")
        return cls(artifact, device)

    @property
    def model_version(self) -> str:
        return self.artifact.version

    # ------------------------------------------------------------------ inputs

    def _scores(self, visit: Visit, patient: PatientTimeline | None, columns: slice | None = None):
        """(probabilities over all label columns, or over `columns` only, stratum, unknown codes,
        model input, number of inputs: codes for the ranker, known note tokens for the text coder)."""
        given = self.coding_model.visit_input(visit, patient)
        probs = self.coding_model.probabilities(given.value, self.device, columns)
        return probs, given.stratum, given.unknown, given.value, _n_inputs(self.kind, visit, given.value)

    def cutoff(self, level: str, stratum: int) -> int | None:
        info = self._cutoffs.get(level) or {}
        return (info.get("by_stratum") or {}).get(str(stratum), info.get("overall"))

    def calibrated(self, level: str, scores: torch.Tensor) -> torch.Tensor:
        """A head's probabilities recalibrated on validation (identity for an artifact
        trained before calibration was stored)."""
        return torch.from_numpy(self._calibrated(level, scores.numpy()))

    def _calibrated(self, level: str, scores: np.ndarray) -> np.ndarray:
        """`calibrated` on numpy scores, float32 like the model's."""
        from model_zoo.recall_cut import apply_platt

        calibration = (self._cutoffs.get(level) or {}).get("calibration")
        if not calibration:
            return scores
        return apply_platt(scores, calibration).astype(np.float32)

    def write_floor(self, precision: float, level: str = "billing") -> float:
        """The lowest calibrated score whose codes were right at least `precision` of the
        time on validation: the write-back floor."""
        from model_zoo.recall_cut import precision_floor

        return precision_floor((self._cutoffs.get(level) or {}).get("precision_curve"), precision)

    def billing_probabilities(self, visit: Visit, patient: PatientTimeline | None = None):
        """(calibrated probabilities over the billing head as a numpy array, number of inputs,
        unknown codes, model input) — what a fused list needs from this model."""
        probs, _, unknown, model_input, n_inputs = self._scores(visit, patient, self.labels.slices()["billing"])
        scores = self._calibrated("billing", probs.numpy())
        return scores.astype(np.float64), n_inputs, unknown, model_input

    # ------------------------------------------------------------------ suggestions

    def suggest(self, visit: Visit, patient: PatientTimeline | None = None, top: int = 50,
                level: str = "billing", evidence: bool = True, *, target_recall: float | None = None,
                rule: str = "per-encounter") -> CodingSuggestions:
        """The `top` best codes, those within the cut marked recommended (the cut may be longer)."""
        from model_zoo.recall_cut import list_cut

        if level not in self.labels.heads:
            raise ValueError(f"level must be one of {self.labels.heads}")
        if rule not in CUT_RULES:
            raise ValueError(f"rule must be one of {CUT_RULES}")
        target = float(target_recall if target_recall is not None else self.target_recall)
        probs, stratum, unknown, model_input, n_inputs = self._scores(visit, patient)
        sl = self.labels.slices()[level]
        level_scores = self.calibrated(level, probs[sl])
        values, order = torch.sort(level_scores, descending=True)
        cutoff_k, expected, threshold = list_cut(values.numpy(), target, rule,
                                                 (self._cutoffs.get(level) or {}).get("recall_thresholds"))
        total = float(values.sum())
        if rule == "global-k":
            cutoff_k = self.cutoff(level, stratum)
            expected = float(values[: cutoff_k or 0].sum()) / total if total > 0 and cutoff_k else None
        k = min(top, level_scores.numel())
        values, order = values[:k], order[:k]
        columns = [sl.start + int(i) for i in order]
        evidences = self._evidence(model_input, columns) if evidence and columns else [[] for _ in columns]
        suggestions, by_code = [], {}
        for rank, (col, score, ev) in enumerate(zip(columns, values.tolist(), evidences), 1):
            head, system, code, display = self.column_code(col)
            suggestions.append(CodeSuggestion(
                system=system, code=code, display=display, level=head,
                score=float(score), rank=rank, recommended=cutoff_k is not None and rank <= cutoff_k,
                evidence=ev))
            by_code[(system, code)] = col
        return CodingSuggestions(suggestions, cutoff_k, target, self.model_version, unknown,
                                 expected_recall=expected, score_total=total, cut_rule=rule, n_inputs=n_inputs,
                                 cut_threshold=threshold,
                                 model_input=model_input, columns=by_code)

    def add_evidence(self, result: CodingSuggestions, codes: set[tuple[str, str]]) -> dict[tuple[str, str], Evidence]:
        """Evidence for these (system, code) pairs of a `suggest(..., evidence=False)` result, in one
        batch: a card shows a handful of the ranked codes, and occlusion costs a forward pass
        per input feature and explained code."""
        wanted = [key for key in result.columns if key in codes]
        if not wanted or result.model_input is None:
            return {}
        found = self._evidence(result.model_input, [result.columns[key] for key in wanted])
        return dict(zip(wanted, found))

    def explain(self, visit: Visit, code: str | Code, patient: PatientTimeline | None = None,
                level: str = "billing") -> Evidence:
        """Evidence for one code (any level's node id, e.g. "E11.65" or "E11")."""
        from fhir_assist.tasks.coding.ontology import SYSTEM_SHORT

        wanted = code.code if isinstance(code, Code) else str(code)
        col = None
        for short in SYSTEM_SHORT:
            col = self.labels.column(level, code_token(short, wanted))
            if col is not None:
                break
        if col is None:
            col = self.labels.column(level, wanted)   # a CCS category
        if col is None:
            return []
        model_input = self._scores(visit, patient)[3]
        return self._evidence(model_input, [col])[0]

    def column_code(self, column: int) -> tuple[str, str, str, str | None]:
        """(head, system, code, display) of a label column; "ccs" is the system of a CCS
        category. Kept per process: a call names the same few hundred columns again and again."""
        found = self._column_codes.get(column)
        if found is None:
            from fhir_assist.tasks.coding.ontology import parse_label

            head, token = self.labels.token_of(column)
            system, code = parse_label(token)
            found = self._column_codes[column] = (head, system or "ccs", code, self._describe(head, token))
        return found

    def _describe(self, head: str, token: str) -> str | None:
        from fhir_assist.tasks.coding.ontology import label_description

        key = (head, token)
        if key not in self._descriptions:
            self._descriptions[key] = label_description(head, token)
        return self._descriptions[key]

    # ------------------------------------------------------------------ evidence

    def _evidence(self, model_input, columns: list[int]) -> list[Evidence]:
        return self.coding_model.evidence(model_input, columns, self.evidence_top, self.device,
                                          self._feature_name)

    def _feature_name(self, kind: str, token: str) -> str:
        key = (kind, token)
        name = self._feature_names.get(key)
        if name is None:
            name = self._feature_names[key] = self._lookup_feature_name(kind, token)
        return name

    def _lookup_feature_name(self, kind: str, token: str) -> str:
        try:
            if kind == "medication":
                from mappings import rxnorm
                ing = rxnorm.ingredients().get(token)
                return f"{ing.name} (RxCUI {token})" if ing else f"RxCUI {token}"
            if kind == "procedure":
                from fhir_assist.adapter.encode import parse_token
                from mappings import procedures
                code = parse_token(token)
                desc = procedures.procedure_description(code.system, code.code)
                return f"{code.code} {desc}" if desc else code.code
        except Exception:  # a readable name is a nicety; fall back to the token
            pass
        return token


def _n_inputs(kind: str, visit: Visit, value) -> int:
    """What the model read of this visit: its input codes, or its known note tokens."""
    if kind == "icd-ranker":
        from fhir_assist.tasks.coding.encounters import visit_inputs

        meds, procs = visit_inputs(visit)
        return len(meds) + len(procs)
    ids = value[1] if isinstance(value, tuple) and len(value) > 1 else []
    return sum(1 for i in ids if i > 1)      # 0 pads, 1 is out of vocabulary
