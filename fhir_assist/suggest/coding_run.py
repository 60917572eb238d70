"""The coding models' one list for a visit: fused when a fusion fits the loaded coders, else
each model's list merged; the ICD billing candidates, the recommended ones, and the part
confident enough to write back. The CDS service and batch coding both call this.

Models are passed as loaded entries (`.suggester`, `.version`, `.lock`), so this module knows
nothing of how or where they were loaded.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mappings.codesystems import ICD9CM, ICD10CM

from .coding import CodeSuggestion

ICD_SYSTEMS = (ICD10CM, ICD9CM)
# Visits whose record says little of what was treated, and evidence that comes from the visit itself.
# (At discharge a visit is usually still uncoded or known by its reason: that alone is normal.)
THIN_VISITS = frozenset({"z-codes-only"})
OWN_EVIDENCE = frozenset({"medication", "procedure", "note"})
FUSION, RANKER, TEXT_CODER = "coding-fusion", "icd-ranker", "text-coder"
_NO_LOCK = contextlib.nullcontext()

Observe = Callable[[str, float], None]      # (model name, seconds) → metrics


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
    cut_rule: str | None = None        # the ranker's own rule when it has one (MERA: "eov")

    def candidates(self, visit) -> list[MergedCode]:
        """ICD billing codes not already recorded on the visit, best first."""
        already = {(c.system, c.code) for c in visit.diagnoses}
        return [m for m in self.codes if m.system in ICD_SYSTEMS and m.level == "billing"
                and (m.system, m.code) not in already]


@dataclass
class CodingModels:
    """The loaded coding entries a run may use (the ranker is required)."""
    ranker: Any
    text: Any | None = None
    fusion: Any | None = None


def run_coding(models: CodingModels, visit, timeline, settings, *, unknown: list | None = None,
               observe: Observe | None = None) -> CodingRun:
    """The coding list for `visit` under `settings` (top_codes, target_recall, cut_rule,
    evidence, write_back_precision). `unknown`: codes the record held that no vocabulary knows."""
    fusion, ranker, text = models.fusion, models.ranker, models.text
    if fusion is not None and fusion.suggester.fits(ranker.suggester, text.suggester if text else None):
        return _fused(models, visit, timeline, settings, list(unknown or []), observe)
    return _merged(models, visit, timeline, settings, list(unknown or []), observe)


def ranked_depth(settings) -> int:
    """How many codes each model ranks for a visit."""
    return max(50, settings.top_codes * 3)


def codes_to_write(visit, run: CodingRun, recommended: list[MergedCode], write_back_max: int) -> list[MergedCode]:
    """Recommended codes a coder is likely to keep: inside the cut, above the precision
    floor, at most write_back_max. A visit the models could read nothing from (no
    medications, procedures or note: a visit known only by its reason), or one coded
    only with Z-codes (a check-up, a vaccination), gets only codes its own evidence supports: named by its
    reasons, or pushed up by its own medications, procedures or note. The population's
    prior and the patient's older visits are not evidence about this one."""
    chosen = [m for m in recommended if m.above_floor]
    if is_thin(visit, run):
        reasons = {(c.system, c.code) for c in visit.reason_codes}
        chosen = [m for m in chosen if (m.system, m.code) in reasons
                  or any(e[0] in OWN_EVIDENCE for e in m.evidence if isinstance(e, (list, tuple)) and e)]
    return chosen[:write_back_max]


def is_thin(visit, run: CodingRun) -> bool:
    """The visit gave the models nothing to read, or is coded only with Z-codes."""
    return not run.has_evidence or visit.coding in THIN_VISITS


def _observe(observe: Observe | None, name: str, started: float) -> None:
    if observe is not None:
        observe(name, time.perf_counter() - started)


def _fused(models: CodingModels, visit, timeline, settings, unknown: list, observe) -> CodingRun:
    """One calibrated list from the ranker, the text coder and the patient's history."""
    fusion, ranker, text = models.fusion, models.ranker, models.text
    started = time.perf_counter()
    with fusion.lock, ranker.lock, (text.lock if text is not None else _NO_LOCK):
        result = fusion.suggester.suggest(
            visit, timeline, ranker.suggester, text.suggester if text is not None else None,
            top=ranked_depth(settings), target_recall=settings.target_recall, rule=settings.cut_rule,
            evidence=settings.evidence)
    _observe(observe, FUSION, started)
    floor = fusion.suggester.write_floor(settings.write_back_precision)
    codes = [MergedCode(s.system, s.code, s.display, s.level, s.score, s.rank, s.recommended, list(s.evidence),
                        [kind for kind in dict.fromkeys(e[0] for e in s.evidence)], s.score >= floor)
             for s in result.suggestions]
    versions = [fusion.version, ranker.version] + ([text.version] if text is not None else [])
    unknown = unique_unknown(unknown + list(result.unknown_codes or []))
    return CodingRun(codes, versions, unknown, result.cutoff_k, settings.target_recall,
                     result.expected_recall, result.n_inputs > 0)


def _merged(models: CodingModels, visit, timeline, settings, unknown: list, observe) -> CodingRun:
    """Without a fusion fitted on the loaded models: each model's list, merged (the higher
    score where both suggest a code), each cut by its own rule."""
    top = ranked_depth(settings)
    runs = [(RANKER, models.ranker)]
    if visit.notes and models.text is not None:
        runs.append((TEXT_CODER, models.text))
    merged: dict[tuple[str, str], MergedCode] = {}
    versions = []
    cutoff_k, expected, has_evidence, cut_rule = None, None, False, None
    for name, model in runs:
        started = time.perf_counter()
        # Note-span evidence of the text coder costs seconds per call (occlusion over the
        # note): the hook path never computes it; the coder worklist shows it on demand.
        options = {} if settings.evidence and name == RANKER else {"evidence": False}
        with model.lock:
            result = model.suggester.suggest(visit, timeline, top=top, rule=settings.cut_rule,
                                             target_recall=settings.target_recall, **options)
            floor = model.suggester.write_floor(settings.write_back_precision)
        _observe(observe, name, started)
        versions.append(getattr(result, "model_version", None) or model.version)
        unknown += list(getattr(result, "unknown_codes", []) or [])
        has_evidence = has_evidence or getattr(result, "n_inputs", 0) > 0
        if name == RANKER:
            cutoff_k, expected, cut_rule = result.cutoff_k, result.expected_recall, result.cut_rule
        for s in result.suggestions:
            _merge_one(merged, s, name, floor)
    ordered = sorted(merged.values(), key=lambda m: (not m.recommended, -m.score))
    for m in ordered:
        m.evidence.sort(key=_evidence_weight, reverse=True)
    for i, m in enumerate(ordered, 1):
        m.rank = i
    n_recommended = sum(1 for m in ordered if m.recommended)
    return CodingRun(ordered, versions, unique_unknown(unknown), max(n_recommended, cutoff_k or 0),
                     settings.target_recall, expected, has_evidence, cut_rule)


def _merge_one(merged: dict, s: CodeSuggestion, name: str, floor: float) -> None:
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


def unique_unknown(unknown: list) -> list:
    """Unknown codes once each, for the card's note."""
    seen, unique = set(), []
    for u in unknown:
        key = (getattr(u, "system", None) or (u.get("system") if isinstance(u, dict) else None),
               getattr(u, "code", None) or (u.get("code") if isinstance(u, dict) else str(u)))
        if key not in seen:
            seen.add(key)
            unique.append(u)
    return unique


def _evidence_weight(evidence: Any) -> float:
    try:
        return abs(float(evidence[2]))
    except (TypeError, ValueError, IndexError):
        return 0.0
