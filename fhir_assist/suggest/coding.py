"""Coding suggestions for one encounter: ranked billing codes, the RE@R cut-off, evidence.

    suggester = CodingSuggester.load("icd-ranker")          # or a path, or "text-coder"
    result = suggester.suggest(visit, patient, top=50)
    for s in result.suggestions:
        print(s.rank, s.code, s.display, s.score, "recommended" if s.recommended else "more")

The cut-off K is the list length that reached the target recall (default 90 %) on
validation encounters "like this one" — same bucket of number of input codes (or of
note length for the text coder). Suggestions ranked within K are *recommended*; the
rest are offered as "more". Evidence names the medications, procedures or note
passages that pushed each code up (occlusion / gradient × input, `model_zoo.attribution`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fhir_assist.adapter.visits import Code, PatientTimeline, Visit
from fhir_assist.fhir.tokens import code_token

__all__ = ["CodeSuggestion", "CodingSuggestions", "CodingSuggester"]

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

    def _scores(self, visit: Visit, patient: PatientTimeline | None):
        """(probabilities over all label columns, stratum, unknown codes, model input)."""
        given = self.coding_model.visit_input(visit, patient)
        probs = self.coding_model.probabilities(given.value, self.device)
        return probs, given.stratum, given.unknown, given.value

    def cutoff(self, level: str, stratum: int) -> int | None:
        info = self._cutoffs.get(level) or {}
        return (info.get("by_stratum") or {}).get(str(stratum), info.get("overall"))

    # ------------------------------------------------------------------ suggestions

    def suggest(self, visit: Visit, patient: PatientTimeline | None = None, top: int = 50,
                level: str = "billing", evidence: bool = True) -> CodingSuggestions:
        from fhir_assist.tasks.coding.ontology import parse_label

        if level not in self.labels.heads:
            raise ValueError(f"level must be one of {self.labels.heads}")
        probs, stratum, unknown, model_input = self._scores(visit, patient)
        sl = self.labels.slices()[level]
        level_scores = probs[sl]
        k = min(top, level_scores.numel())
        values, order = torch.topk(level_scores, k) if k else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        cutoff_k = self.cutoff(level, stratum)
        columns = [sl.start + int(i) for i in order]
        evidences = self._evidence(model_input, columns) if evidence and columns else [[] for _ in columns]
        suggestions, by_code = [], {}
        for rank, (col, score, ev) in enumerate(zip(columns, values.tolist(), evidences), 1):
            head, token = self.labels.token_of(col)
            system, code = parse_label(token)
            suggestions.append(CodeSuggestion(
                system=system or "ccs", code=code, display=self._describe(head, token), level=head,
                score=float(score), rank=rank, recommended=cutoff_k is not None and rank <= cutoff_k,
                evidence=ev))
            by_code[(system or "ccs", code)] = col
        return CodingSuggestions(suggestions, cutoff_k, self.target_recall, self.model_version, unknown,
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
        _, _, _, model_input = self._scores(visit, patient)
        return self._evidence(model_input, [col])[0]

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
