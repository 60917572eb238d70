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

    @property
    def recommended(self) -> list[CodeSuggestion]:
        return [s for s in self.suggestions if s.recommended]

    @property
    def more(self) -> list[CodeSuggestion]:
        return [s for s in self.suggestions if not s.recommended]


def _age(visit: Visit, patient: PatientTimeline | None) -> float | None:
    if visit.age is not None:
        return visit.age
    if patient is not None and patient.birth_date and visit.start:
        return (visit.start.date() - patient.birth_date).days / 365.25
    return None


class CodingSuggester:
    """Wraps an "icd-coding" artifact (structured multitask ranker or text coder)."""

    def __init__(self, artifact, device: torch.device | str | None = None, evidence_top: int = 5):
        from fhir_assist.pipelines import coding
        from model_zoo.train import pick_device

        self.artifact = artifact
        self.kind = artifact.hyperparameters.get("kind", "icd-ranker")
        self.device = pick_device(device)
        self.bundle = coding.load_ranker(artifact) if self.kind == "icd-ranker" else coding.load_text(artifact)
        self.model_name = "multitask-ranker" if self.kind == "icd-ranker" else "text-coder"
        self.model = (self.bundle.ranker if self.kind == "icd-ranker" else self.bundle.coder).to(self.device).eval()
        self.labels = self.bundle.labels
        self.evidence_top = evidence_top
        cut = (self.bundle.cutoffs or {}).get(self.model_name, {})
        self._cutoffs = cut
        self.target_recall = float(next(iter(cut.values()), {}).get("target_recall", 0.9)) if cut else 0.9
        self._descriptions: dict[tuple[str, str], str | None] = {}

    @classmethod
    def load(cls, artifact: str | Path | Any = "icd-ranker", device=None) -> "CodingSuggester":
        from model_zoo import registry

        if not hasattr(artifact, "hyperparameters"):
            artifact = registry.load(artifact)
        if artifact.task != "icd-coding":
            raise ValueError(f"artifact {artifact.path} is a {artifact.task!r} model, not icd-coding")
        return cls(artifact, device)

    @property
    def model_version(self) -> str:
        return self.artifact.version

    # ------------------------------------------------------------------ inputs

    def _structured_input(self, visit: Visit, patient: PatientTimeline | None):
        from fhir_assist.pipelines import coding
        from mappings.codesystems import RXNORM

        meds, procs = coding.visit_inputs(visit)
        feats = self.bundle.features
        unknown = [Code(RXNORM, m) for m in meds if m not in feats.medications]
        unknown += list(visit.unmapped_medications)
        proc_codes = {coding.procedure_token(p): p for p in visit.procedures}
        unknown += [proc_codes[p] for p in procs if p not in feats.procedures]
        x = feats.encode_one(meds, procs, _age(visit, patient), patient.sex if patient else None)
        return x, len(meds) + len(procs), unknown

    def _note_input(self, visit: Visit):
        from fhir_assist.pipelines import coding

        max_len = self.bundle.hyper.get("max_len", coding.TEXT_DEFAULTS["max_len"])
        tokens = coding.note_tokens(visit, max_len)
        return tokens, coding.note_ids(self.bundle.notes, tokens, max_len)

    def _scores(self, visit: Visit, patient: PatientTimeline | None):
        """(probabilities over all label columns, stratum, unknown codes, model input)."""
        from fhir_assist.pipelines import coding

        if self.kind == "icd-ranker":
            x, n_inputs, unknown = self._structured_input(visit, patient)
            with torch.no_grad():
                probs = torch.sigmoid(self.model(x.unsqueeze(0).to(self.device)))[0].float().cpu()
            return probs, coding.input_stratum(n_inputs), unknown, x
        tokens, ids = self._note_input(visit)
        from model_zoo import text_coder
        with torch.no_grad():
            batch = text_coder.pad_batch([ids], len(ids) or 1).to(self.device)
            icd, ccs = self.model(batch)
            logits = torch.cat([icd, ccs], dim=1) - self.model.config.logit_shift
            probs = torch.sigmoid(logits)[0].float().cpu()
        return probs, coding.input_stratum(len(ids), coding.NOTE_BUCKETS), [], (tokens, ids)

    def cutoff(self, level: str, stratum: int) -> int | None:
        info = self._cutoffs.get(level) or {}
        return (info.get("by_stratum") or {}).get(str(stratum), info.get("overall"))

    # ------------------------------------------------------------------ suggestions

    def suggest(self, visit: Visit, patient: PatientTimeline | None = None, top: int = 50,
                level: str = "billing", evidence: bool = True) -> CodingSuggestions:
        from fhir_assist.pipelines import coding

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
        suggestions = []
        for rank, (col, score, ev) in enumerate(zip(columns, values.tolist(), evidences), 1):
            head, token = self.labels.token_of(col)
            system, code = coding.parse_label(token)
            suggestions.append(CodeSuggestion(
                system=system or "ccs", code=code, display=self._describe(head, token), level=head,
                score=float(score), rank=rank, recommended=cutoff_k is not None and rank <= cutoff_k,
                evidence=ev))
        return CodingSuggestions(suggestions, cutoff_k, self.target_recall, self.model_version, unknown)

    def explain(self, visit: Visit, code: str | Code, patient: PatientTimeline | None = None,
                level: str = "billing") -> Evidence:
        """Evidence for one code (any level's node id, e.g. "E11.65" or "E11")."""
        from fhir_assist.pipelines import coding

        wanted = code.code if isinstance(code, Code) else str(code)
        col = None
        for short in coding.SYSTEM_SHORT:
            col = self.labels.column(level, f"{short}|{wanted}")
            if col is not None:
                break
        if col is None:
            col = self.labels.column(level, wanted)   # a CCS category
        if col is None:
            return []
        _, _, _, model_input = self._scores(visit, patient)
        return self._evidence(model_input, [col])[0]

    def _describe(self, head: str, token: str) -> str | None:
        from fhir_assist.pipelines import coding

        key = (head, token)
        if key not in self._descriptions:
            self._descriptions[key] = coding.label_description(head, token)
        return self._descriptions[key]

    # ------------------------------------------------------------------ evidence

    def _evidence(self, model_input, columns: list[int]) -> list[Evidence]:
        from model_zoo import attribution

        top = self.evidence_top
        if self.kind == "icd-ranker":
            x = model_input
            delta, features = attribution.occlusion(lambda b: self.model(b.to(self.device)), x, columns)
            out = []
            for row in delta:
                items = sorted(zip(features, row.tolist()), key=lambda t: -t[1])
                out.append([(kind, self._feature_name(kind, tok), round(w, 4))
                            for f, w in items[:top] if w > 0
                            for kind, tok in [self.bundle.features.feature_label(f)]])
            return out
        tokens, ids = model_input
        if not ids:
            return [[] for _ in columns]
        from model_zoo import text_coder as tc

        icd_cols = self.labels.slices()
        icd_stop = icd_cols["billing"].stop
        branch = [("icd", c) if c < icd_stop else ("ccs", c - icd_stop) for c in columns]
        batch = tc.pad_batch([ids], len(ids)).to(self.device)
        with torch.enable_grad():
            scores = attribution.token_attribution(self.model, batch[0], branch)
        out = []
        for row in scores:
            spans = attribution.top_spans(row, width=6, top=min(top, 3), length=len(tokens))
            out.append([("note", " ".join(tokens[a:b]), round(w, 4)) for a, b, w in spans])
        return out

    def _feature_name(self, kind: str, token: str) -> str:
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
