"""MedicationRequest → the medication concept it names → RxNorm ingredient RxCUIs.

A request names its drug inline (medicationCodeableConcept), through a contained
Medication ("#med1"), or through a Medication resource elsewhere in the data
(medicationReference), which may only be resolvable once everything has been read.
Ingredients come from RxNorm codings first (any RxCUI level the data file lists;
combination products give all their ingredients), then from displays and text by
name, which is how drugs arrive from systems that code them locally (NDC, in-house
formularies).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

from mappings import codesystems as cs

from .references import reference_id


@dataclass(frozen=True)
class MedicationSource:
    """Where a MedicationRequest's drug is described; exactly one field but `display` is set."""

    concept: Any = None                 # inline concept or the contained Medication's code
    medication_id: str | None = None    # a Medication resource to look up
    display: str | None = None          # medicationReference.display, the last resort for a name
    problem: str | None = None          # why the request names no drug we can read


def medication_source(request: Mapping[str, Any]) -> MedicationSource:
    """Where `request` (a MedicationRequest) describes its drug."""
    concept = request.get("medicationCodeableConcept")
    ref = request.get("medicationReference")
    if isinstance(concept, dict) or (concept is not None and not isinstance(ref, dict)):
        return MedicationSource(concept=concept)
    if not isinstance(ref, dict):
        return MedicationSource(problem="MedicationRequest without a medication")
    display = ref.get("display") if isinstance(ref.get("display"), str) else None
    rid = reference_id(ref, "Medication")
    if rid is None:
        return MedicationSource(display=display, problem="MedicationRequest without a medication")
    if not rid.startswith("#"):
        return MedicationSource(medication_id=rid, display=display)
    inner = next((c for c in request.get("contained") or []
                  if isinstance(c, dict) and c.get("resourceType") == "Medication"
                  and c.get("id") == rid[1:]), None)
    if inner is None:
        return MedicationSource(display=display,
                                problem="MedicationRequest referencing a missing contained Medication")
    code = inner.get("code")
    return MedicationSource(concept=code if code is not None else {}, display=display)


def request_concept(request: Mapping[str, Any], medications: Mapping[str, Any]) -> Any:
    """The concept naming `request`'s drug, Medication references resolved in `medications`
    (id → Medication resource); a bare {"text": display} where nothing else is known."""
    source = medication_source(request)
    if source.concept:
        return source.concept
    target = medications.get(source.medication_id) if source.medication_id else None
    code = target.get("code") if isinstance(target, dict) else None
    return code or {"text": source.display}


def _codings(concept: Any) -> list[dict]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


@lru_cache(maxsize=65536)
def coding_ingredients(code: str | None, display: str | None) -> tuple[str, ...]:
    """Ingredient RxCUIs of one RxNorm code and/or drug name (cached: a cohort repeats a few
    thousand drugs millions of times)."""
    from mappings import rxnorm
    return tuple(rxnorm.ingredients_for(code, display))


def _canonical(url: Any) -> str | None:
    return cs.canonical_system(url) if isinstance(url, str) else None


def concept_ingredients(concept: Any, canonical: Callable[[Any], str | None] = _canonical
                        ) -> tuple[tuple[str, ...], bool]:
    """(ingredient RxCUIs, matched by name) of a medication concept; ((), False) if none.

    `canonical` maps a coding's system to its canonical URL (callers may pass a cached one).
    """
    codings = _codings(concept)
    rxnorm = [c for c in codings if canonical(c.get("system")) == cs.RXNORM]
    for coding in rxnorm:
        display = coding.get("display")
        found = coding_ingredients(_text(coding.get("code")), display if isinstance(display, str) else None)
        if found:
            return found, False
    names = [c.get("display") for c in codings if isinstance(c.get("display"), str) and c not in rxnorm]
    text = _text(concept.get("text")) if isinstance(concept, dict) else None
    if text:
        names.append(text)
    for name in names:
        found = coding_ingredients(None, name.strip())
        if found:
            return found, True
    return (), False


def concept_name(concept: Any) -> str | None:
    """The name a concept gives its drug: its text, else the first coding display."""
    text = _text(concept.get("text")) if isinstance(concept, dict) else None
    return text or next((c["display"] for c in _codings(concept) if _text(c.get("display"))), None)
