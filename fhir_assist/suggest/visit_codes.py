"""One visit's diagnosis codes: the coding models' ranked list, its cut, the evidence for the
codes someone will look at, and which codes are confident enough to write back.

The coding-suggestions hook (`cds.coding_service`) and `code-batch` (`batch.patient`) both
code a visit with `VisitCoder`, so a card and a batch line for the same visit agree. Nothing
here knows of HTTP or hooks: a visit's data is anything with `visit`, `timeline` and
`unknown_codes()`.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from fhir_assist.config import Settings

from .coding import CodeSuggestion
from .model_set import FUSION, RANKER, TEXT_CODER, ModelSet

ICD_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-9-cm")
_NO_LOCK = contextlib.nullcontext()
# Visits whose record says little of what was treated, and evidence that comes from the visit itself.
# (At discharge a visit is usually still uncoded or known by its reason: that alone is normal.)
THIN_VISITS = frozenset({"z-codes-only"})
OWN_EVIDENCE = frozenset({"medication", "procedure", "note", "text-coder"})


class VisitData(Protocol):
    """What coding a visit reads: the visit, the patient's timeline and the codes not recognised
    while reading them (a hook call's `PatientData`, a batch patient's visit)."""
    visit: object
    timeline: object

    def unknown_codes(self) -> list: ...


@dataclass
class MergedCode(CodeSuggestion):
    """A code suggested by one or more coding models, and which of them suggested it."""
    models: list[str] = field(default_factory=list)
    above_floor: bool = False          # some model scored it above its write-back floor


@dataclass
class CodingRun:
    """The coding models' merged list for one visit, and where it was cut."""
    codes: list[MergedCode]
    versions: list[str]
    unknown: list
    cutoff_k: int | None
    target_recall: float
    expected_recall: float | None
    has_evidence: bool                 # the visit gave a model something to read
    # Attribution for chosen (system, code) pairs, in one batch: computed only for the codes a
    # card shows or write-back checks, not for every ranked code.
    explain: Callable[[set], dict] | None = None
    score_total: float | None = None   # Σ p over every code: what an expected recall divides by
    cut_rule: str | None = None        # the ranker's own rule when it has one (MERA: "eov")
    cut_threshold: float | None = None # the fused list's per-encounter probability threshold, if used


class VisitCoder:
    """The loaded coding models and the settings of the list (depth, target recall, cut rule,
    write-back floor and cap). `observe(model name, seconds)` hears each model call's time."""

    def __init__(self, models: ModelSet, settings: Settings,
                 observe: Callable[[str, float], None] | None = None) -> None:
        self.models = models
        self.settings = settings
        self.observe = observe or (lambda name, seconds: None)

    def rank_codes(self, data: VisitData) -> CodingRun:
        """The visit's ranked codes with their cut, without evidence."""
        fusion = self.models.get(FUSION)
        ranker = self.models.get(RANKER)
        text = self.models.get(TEXT_CODER)
        if fusion is not None and fusion.suggester.fits(ranker.suggester, text.suggester if text else None):
            return self._fused(data, fusion, ranker, text)
        return self._merged(data)

    @staticmethod
    def candidates(run: CodingRun, visit) -> list[MergedCode]:
        """The ranked ICD billing codes not already recorded on the visit, in rank order."""
        already = {(c.system, c.code) for c in visit.diagnoses}
        return [m for m in run.codes if m.system in ICD_SYSTEMS and m.level == "billing"
                and (m.system, m.code) not in already]

    @staticmethod
    def thin(data: VisitData, run: CodingRun) -> bool:
        """A visit the models could read nothing from, or one coded only with Z-codes."""
        return not run.has_evidence or data.visit.coding in THIN_VISITS

    def codes_to_explain(self, data: VisitData, run: CodingRun,
                         recommended: list[MergedCode]) -> list[MergedCode]:
        """The codes `codes_to_write` judges by their own evidence (thin visits only)."""
        return [m for m in recommended if m.above_floor] if self.thin(data, run) else []

    @staticmethod
    def add_evidence(run: CodingRun, codes: list[MergedCode]) -> None:
        """Explain `codes` in one batch (ranking computes no evidence: it costs per code)."""
        if run.explain is None or not codes:
            return
        unique = {id(m): m for m in codes}.values()
        found = run.explain({(m.system, m.code) for m in unique})
        for m in unique:
            m.evidence += found.get((m.system, m.code)) or []

    def codes_to_write(self, data: VisitData, run: CodingRun, recommended: list[MergedCode]) -> list[MergedCode]:
        """Recommended codes a coder is likely to keep: inside the cut, above the precision
        floor, at most write_back_max. A visit the models could read nothing from (no
        medications, procedures or note: a visit known only by its reason), or one coded
        only with Z-codes (a check-up, a vaccination), gets only codes its own evidence supports: named by its
        reasons, or pushed up by its own medications, procedures or note. The population's
        prior and the patient's older visits are not evidence about this one."""
        chosen = [m for m in recommended if m.above_floor]
        if self.thin(data, run):
            reasons = {(c.system, c.code) for c in data.visit.reason_codes}
            chosen = [m for m in chosen if (m.system, m.code) in reasons
                      or any(e[0] in OWN_EVIDENCE for e in m.evidence if isinstance(e, (list, tuple)) and e)]
        return chosen[: self.settings.write_back_max]

    def _fused(self, data: VisitData, fusion, ranker, text) -> CodingRun:
        """One calibrated list from the ranker, the text coder and the patient's history."""
        settings = self.settings
        started = time.perf_counter()
        with fusion.lock, ranker.lock, (text.lock if text is not None else _NO_LOCK):
            result = fusion.suggester.suggest(
                data.visit, data.timeline, ranker.suggester, text.suggester if text is not None else None,
                top=max(50, settings.top_codes * 3), target_recall=settings.target_recall, rule=settings.cut_rule,
                evidence=False, min_probability=settings.cut_min_probability or None)
        self.observe(FUSION, time.perf_counter() - started)
        floor = fusion.suggester.write_floor(settings.write_back_precision)
        codes = [MergedCode(s.system, s.code, s.display, s.level, s.score, s.rank, s.recommended, list(s.evidence),
                            [kind for kind in dict.fromkeys(e[0] for e in s.evidence)], s.score >= floor)
                 for s in result.suggestions]
        versions = [fusion.version, ranker.version] + ([text.version] if text is not None else [])
        unknown = _unique_unknown(list(data.unknown_codes()) + list(result.unknown_codes or []))
        return CodingRun(codes, versions, unknown, result.cutoff_k, settings.target_recall,
                         result.expected_recall, result.n_inputs > 0,
                         _explainer(ranker, result) if settings.evidence else None, result.score_total,
                         cut_threshold=result.cut_threshold)

    def _merged(self, data: VisitData) -> CodingRun:
        """Without a fusion fitted on the loaded models: each model's list, merged (the higher
        score where both suggest a code), each cut by its own rule."""
        settings = self.settings
        top = max(50, settings.top_codes * 3)
        runs = [RANKER]
        if data.visit.notes and self.models.get(TEXT_CODER) is not None:
            runs.append(TEXT_CODER)
        merged: dict[tuple[str, str], MergedCode] = {}
        versions, unknown = [], list(data.unknown_codes())
        cutoff_k, expected, has_evidence, cut_rule = None, None, False, None
        explain, total = None, None
        for name in runs:
            model = self.models.get(name)
            started = time.perf_counter()
            with model.lock:
                result = model.suggester.suggest(data.visit, data.timeline, top=top, rule=settings.cut_rule,
                                                 target_recall=settings.target_recall, evidence=False)
                floor = model.suggester.write_floor(settings.write_back_precision)
            self.observe(name, time.perf_counter() - started)
            versions.append(getattr(result, "model_version", None) or model.version)
            unknown += list(getattr(result, "unknown_codes", []) or [])
            has_evidence = has_evidence or getattr(result, "n_inputs", 0) > 0
            if name == RANKER:
                cutoff_k, expected, cut_rule = result.cutoff_k, result.expected_recall, result.cut_rule
                total = getattr(result, "score_total", None)
                # Note-span evidence of the text coder costs seconds per call (gradients over the
                # note): the hook path explains with the ranker only; the worklist shows the rest.
                explain = _explainer(model, result) if settings.evidence else None
            for s in result.suggestions:
                _merge(merged, name, s, floor)
        ordered = sorted(merged.values(), key=lambda m: (not m.recommended, -m.score))
        for i, m in enumerate(ordered, 1):
            m.rank = i
        n_recommended = sum(1 for m in ordered if m.recommended)
        return CodingRun(ordered, versions, _unique_unknown(unknown), max(n_recommended, cutoff_k or 0),
                         settings.target_recall, expected, has_evidence, explain=explain, score_total=total,
                         cut_rule=cut_rule)


def _merge(merged: dict[tuple[str, str], MergedCode], name: str, s, floor: float) -> None:
    """One model's suggestion `s` into the merged list (the higher score where both suggest it)."""
    key = (s.system, s.code)
    have = merged.get(key)
    if have is None:
        have = merged[key] = MergedCode(s.system, s.code, s.display, s.level, float(s.score),
                                        int(s.rank), bool(s.recommended), list(s.evidence or []), [name])
    else:
        have.score = max(have.score, float(s.score))
        have.recommended = have.recommended or bool(s.recommended)
        have.evidence += list(s.evidence or [])
        have.models.append(name)
        have.display = have.display or s.display
    have.above_floor = have.above_floor or float(s.score) >= floor


def _explainer(model, result) -> Callable[[set], dict]:
    """Evidence for chosen codes of `result`, computed later under the model's lock."""
    def explain(codes: set) -> dict:
        with model.lock:
            return model.suggester.add_evidence(result, codes)
    return explain


def _unique_unknown(unknown: list) -> list:
    """Unknown codes once each, for the card's note."""
    seen, unique = set(), []
    for u in unknown:
        key = (getattr(u, "system", None) or (u.get("system") if isinstance(u, dict) else None),
               getattr(u, "code", None) or (u.get("code") if isinstance(u, dict) else str(u)))
        if key not in seen:
            seen.add(key)
            unique.append(u)
    return unique
