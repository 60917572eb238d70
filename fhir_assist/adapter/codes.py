"""FHIR codings → our code systems: ICD diagnoses, ICD procedures, RxNorm ingredients.

Exports from other systems put codes under OIDs, misspelt URLs, or the wrong ICD
edition; undotted ("E1165", "4280"), lower-case or padded codes are common. Each
coding is mapped once (results are cached: a cohort repeats the same few thousand
codes millions of times) and what cannot be mapped is counted in the report by
system — never dropped silently.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fhir_assist.fhir.medications import concept_ingredients
from mappings import codesystems as cs

from .visits import Code

ICD_DX_SYSTEMS = (cs.ICD10CM, cs.ICD9CM)
# Systems that are certainly not ICD: a code under one of them is never re-read as ICD.
_NOT_ICD = frozenset({cs.SNOMED, cs.LOINC, cs.RXNORM, cs.CPT})

_PCS_RE = re.compile(r"[0-9A-HJ-NP-Z]{7}\Z")          # ICD-10-PCS: 7 characters, no I or O
_ICD9_PROC_RE = re.compile(r"(\d{2})\.?(\d{0,2})\Z")


def _clean(code: Any) -> str | None:
    if not isinstance(code, str):
        return None
    code = code.strip()
    return code or None


def _codings(concept: Any) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return []
    return [c for c in codings if isinstance(c, dict)]


def _concept_text(concept: Any) -> str | None:
    if isinstance(concept, dict) and isinstance(concept.get("text"), str):
        return concept["text"].strip() or None
    return None


@lru_cache(maxsize=1 << 16)
def map_diagnosis(url: str | None, code: str) -> tuple[Code | None, bool]:
    """(ICD Code, system_corrected) for a coding's system URL and cleaned code, else
    (None, False). Pure, so memoised for the process: the service maps each call's
    codes afresh, and the same few thousand codes come back in every call."""
    canon = cs.canonical_system(url) if url is not None else None
    candidates: list[str] = []
    if canon in ICD_DX_SYSTEMS:
        candidates.append(canon)
    if canon not in _NOT_ICD:
        guess = cs.detect_icd_system(code)
        if guess and guess not in candidates:
            candidates.append(guess)
    for system in candidates:
        normal = _valid_icd(system, code)
        if normal:
            return Code(system, normal), system != canon
    return None, False


def _valid_icd(system: str, code: str) -> str | None:
    from mappings.icd import hierarchy_for
    hierarchy = hierarchy_for(system)
    normal = hierarchy.normalize(code)
    return normal if normal and hierarchy.is_valid(normal) else None


class CodeMapper:
    """Maps codings to our vocabularies, counting what it cannot map in `report`."""

    def __init__(self, report) -> None:
        self.report = report
        self._dx_cache: dict[tuple, tuple[Code | None, bool]] = {}
        self._proc_cache: dict[tuple, tuple[Code | None, bool]] = {}
        self._system_cache: dict[Any, str | None] = {}

    # -- systems -------------------------------------------------------------
    def canonical(self, url: Any) -> str | None:
        try:
            return self._system_cache[url]
        except KeyError:
            pass
        except TypeError:          # unhashable junk in a system field
            return None
        value = cs.canonical_system(url) if isinstance(url, str) else None
        self._system_cache[url] = value
        return value

    def _label(self, url: Any) -> str:
        """The system as reported: canonical URL when recognised, else as written."""
        canon = self.canonical(url)
        if canon:
            return canon
        return url.strip() if isinstance(url, str) and url.strip() else "(no system)"

    # -- diagnoses -------------------------------------------------------------
    def diagnosis_code(self, url: Any, code: Any, display: Any = None) -> tuple[Code | None, bool]:
        """(Code, system_corrected) for one coding, or (None, False) if not ICD we know."""
        code = _clean(code)
        if code is None:
            return None, False
        display = display if isinstance(display, str) and display else None
        # Keyed with the display too, so equal codings share one Code object (memory).
        key = (url, code, display)
        hit = self._dx_cache.get(key)
        if hit is None:
            mapped, corrected = map_diagnosis(url if isinstance(url, str) else None, code)
            if mapped is not None and display:
                mapped = Code(mapped.system, mapped.code, display)
            hit = self._dx_cache[key] = (mapped, corrected)
        return hit

    def diagnoses(self, concept: Any) -> tuple[list[Code], list[Code]]:
        """(ICD codes, unknown codes) of a CodeableConcept.

        Other codings of a concept that has an ICD coding are translations, not
        unknown codes; a concept with no ICD coding counts each of its codings as unknown.
        """
        return self._map_concept(
            concept,
            lambda coding: self.diagnosis_code(coding.get("system"), coding.get("code"), coding.get("display")),
            "ICD codes under a wrong or unrecognised system URL, corrected")

    def _map_concept(self, concept: Any, map_coding, corrected_note: str) -> tuple[list[Code], list[Code]]:
        """(mapped codes, unknown codes) of a concept, `map_coding(coding)` giving (Code | None, corrected)."""
        found: list[Code] = []
        unknown: list[Code] = []
        for coding in _codings(concept):
            mapped, corrected = map_coding(coding)
            if mapped is not None:
                if corrected:
                    self.report.note(corrected_note)
                if mapped not in found:
                    found.append(mapped)
            elif _clean(coding.get("code")):
                unknown.append(Code(self._label(coding.get("system")), _clean(coding.get("code")),
                                    coding.get("display") if isinstance(coding.get("display"), str) else None))
        if found:
            return found, []
        self._count_unknown(concept, unknown)
        return [], unknown

    def _count_unknown(self, concept: Any, unknown: list[Code]) -> None:
        for code in unknown:
            self.report.unknown_code(code.system, code.code)
        if not unknown:
            text = _concept_text(concept)
            self.report.unknown_code("(text only)" if text else "(no code)", text)

    # -- procedures ------------------------------------------------------------
    def _pcs(self, code: str) -> str | None:
        from mappings.procedures import procedure_description
        normal = code.replace(".", "").replace(" ", "").upper()
        if _PCS_RE.match(normal) and procedure_description(cs.ICD10PCS, normal) is not None:
            return normal
        return None

    def _icd9_proc(self, code: str) -> str | None:
        from mappings.procedures import procedure_description
        match = _ICD9_PROC_RE.match(code.replace(" ", ""))
        if not match:
            return None
        head, tail = match.groups()
        normal = f"{head}.{tail}" if tail else head
        if procedure_description(cs.ICD9CM_PROC, normal) is not None:
            return normal
        return None

    def procedure_code(self, url: Any, code: Any) -> tuple[Code | None, bool]:
        code = _clean(code)
        if code is None:
            return None, False
        key = (url, code)
        hit = self._proc_cache.get(key)
        if hit is None:
            hit = self._map_procedure(url, code)
            self._proc_cache[key] = hit
        return hit

    def _map_procedure(self, url: Any, code: str) -> tuple[Code | None, bool]:
        canon = self.canonical(url)
        attempts = []
        if canon == cs.ICD10PCS:
            attempts = [(cs.ICD10PCS, self._pcs), (cs.ICD9CM_PROC, self._icd9_proc)]
        elif canon == cs.ICD9CM_PROC:
            attempts = [(cs.ICD9CM_PROC, self._icd9_proc), (cs.ICD10PCS, self._pcs)]
        elif canon not in _NOT_ICD:
            # ICD-10-CM URL, a local URL or none at all: try by shape.
            attempts = [(cs.ICD10PCS, self._pcs), (cs.ICD9CM_PROC, self._icd9_proc)]
        for system, normalise in attempts:
            normal = normalise(code)
            if normal:
                return Code(system, normal), system != canon
        return None, False

    def procedures(self, concept: Any) -> tuple[list[Code], list[Code]]:
        """(procedure codes, unknown codes) of a CodeableConcept: an open vocabulary.

        ICD-10-PCS and ICD-9-CM codings are recognised and normalised. A concept without
        one keeps its first coded coding as it is (CPT, HCPCS, SNOMED CT, a local system:
        the system as written when unrecognised), with its display or the concept's text:
        a procedure becomes a model feature because it occurs in training data, not because
        a table names it. Only a concept without any code is unknown (counted by system).
        """
        icd: list[Code] = []
        other: Code | None = None
        for coding in _codings(concept):
            mapped, corrected = self._procedure_with_display(coding)
            if mapped is not None:
                if corrected:
                    self.report.note("procedure codes under a wrong or unrecognised system URL, corrected")
                if mapped not in icd:
                    icd.append(mapped)
            elif other is None and _clean(coding.get("code")):
                display = coding.get("display") if isinstance(coding.get("display"), str) else None
                other = Code(self._label(coding.get("system")), _clean(coding.get("code")),
                             display or _concept_text(concept))
        if icd:
            return icd, []
        if other is not None:
            self.report.note(f"procedure codes kept as open-vocabulary tokens ({cs.short_name(other.system) or 'other'})")
            return [other], []
        self._count_unknown(concept, [])
        return [], []

    def _procedure_with_display(self, coding: dict) -> tuple[Code | None, bool]:
        mapped, corrected = self.procedure_code(coding.get("system"), coding.get("code"))
        display = coding.get("display")
        if mapped is not None and isinstance(display, str) and display:
            mapped = Code(mapped.system, mapped.code, display)
        return mapped, corrected

    # -- medications -----------------------------------------------------------
    def medication(self, concept: Any) -> tuple[tuple[str, ...], Code | None]:
        """(ingredient RxCUIs, None) or ((), the unmapped code) for a medication concept
        (see `fhir_assist.fhir.medications.concept_ingredients`)."""
        found, by_name = concept_ingredients(concept, self.canonical)
        if found:
            if by_name:
                self.report.note("medications matched by name")
            return found, None
        codings = _codings(concept)
        text = _concept_text(concept)
        rxnorm = [c for c in codings if self.canonical(c.get("system")) == cs.RXNORM]
        for coding in rxnorm:
            # Outside the ingredient table: the RxCUI is its own token (a feature when it occurs
            # in training data). Its ingredient is unknown here, so it takes part in no DDI pair.
            code = _clean(coding.get("code"))
            if code and code.isdigit():
                self.report.note("RxNorm drugs outside the ingredient table, kept as their own RxCUI")
                return (code,), None
        first = rxnorm[0] if rxnorm else (codings[0] if codings else None)
        if first is not None:
            display = first.get("display")
            unmapped = Code(self._label(first.get("system")), _clean(first.get("code")) or "",
                            display if isinstance(display, str) else text)
        else:
            unmapped = Code("(text only)" if text else "(no code)", text or "", text)
        self.report.unknown_code(unmapped.system, unmapped.code or unmapped.display)
        return (), unmapped
