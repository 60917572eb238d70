"""Compact typed forms of the resources timelines read, decoded straight from JSON (msgspec).

A resource decodes into a small frozen struct holding only the fields the timeline
builder reads or the "fast" validator checks; every other field is dropped while
parsing, and the JSON types are checked in C on the way. The schemas are at least
as strict as `validate._CHECKS` (non-empty codes and references, FHIR ids, positive
ranks, required fields), so a resource that decodes here passes "fast" validation
once its dates, base64 data and required members are checked (`compact_reader`).
Anything else — an unknown resource type, a field of the wrong type, `contained`
resources — fails to decode and is read the ordinary way, which names the problem.
"""
from __future__ import annotations

from typing import Annotated, Any, Optional, Union

import re

import msgspec
from msgspec import Meta, Struct, field

# Codes and references must hold more than white space, and ids be FHIR ids. A pattern
# constraint here would cost a Python regex call per string (a third of decoding), so the
# schema checks lengths only: `decode_resource` checks the id, and `CompactReader` each code
# and reference where it reads them (declining a blank one).
NonEmpty = Annotated[str, Meta(min_length=1)]
FhirId = Annotated[str, Meta(min_length=1, max_length=64)]
# orjson reads an integer past 64 bits as a float ("fast" validation refuses it): declined here
PositiveInt = Annotated[int, Meta(ge=1, le=(1 << 63) - 1)]


class Coding(Struct, frozen=True, gc=False):
    system: Optional[str] = None
    code: Optional[NonEmpty] = None
    display: Optional[str] = None


class Concept(Struct, frozen=True, gc=False):
    """A CodeableConcept; frozen, so the mapping of equal concepts is computed once."""
    coding: Optional[tuple[Coding, ...]] = None
    text: Optional[str] = None


class Reference(Struct, frozen=True, gc=False):
    reference: Optional[NonEmpty] = None


class Period(Struct, frozen=True, gc=False):
    start: Optional[str] = None
    end: Optional[str] = None


class Diagnosis(Struct, frozen=True, gc=False):
    condition: Reference
    use: Optional[Concept] = None
    rank: Optional[PositiveInt] = None


class Attachment(Struct, frozen=True, gc=False):
    contentType: Optional[str] = None
    url: Optional[str] = None
    title: Optional[str] = None
    data: Optional[str] = None


class Content(Struct, frozen=True, gc=False):
    attachment: Attachment


class DocumentContext(Struct, frozen=True, gc=False):
    encounter: Optional[tuple[Reference, ...]] = None
    period: Optional[Period] = None


class _Resource(Struct, frozen=True, gc=False, tag_field="resourceType"):
    id: Optional[FhirId] = None
    contained: Any = None        # read the ordinary way when present
    meta: Any = None             # our own suggestions' tag; a hook call's prefetch checks lastUpdated
    patient: Any = None          # not in these types' schemas, but a hook call's patient filter reads it


class Patient(_Resource, tag="Patient"):
    gender: Optional[str] = None
    birthDate: Optional[str] = None


class Encounter(_Resource, tag="Encounter"):
    status: Optional[str] = None
    class_: Optional[Coding] = field(default=None, name="class")
    subject: Optional[Reference] = None
    period: Optional[Period] = None
    partOf: Optional[Reference] = None
    diagnosis: Optional[tuple[Diagnosis, ...]] = None
    reasonCode: Optional[tuple[Concept, ...]] = None
    reasonReference: Optional[tuple[Reference, ...]] = None
    type: Optional[tuple[Concept, ...]] = None
    serviceType: Optional[Concept] = None


#: a CodeableConcept kept as its JSON text: a cohort repeats a few thousand concepts millions of
#: times, so `compact_reader` decodes (and checks) each distinct text once (`decode_concept`)
ConceptJson = msgspec.Raw
NULL = msgspec.Raw(b"null")         # absent and null alike


class Condition(_Resource, tag="Condition"):
    code: ConceptJson = NULL
    subject: Optional[Reference] = None
    encounter: Optional[Reference] = None
    onsetDateTime: Optional[str] = None
    onsetPeriod: Optional[Period] = None
    recordedDate: Optional[str] = None
    clinicalStatus: Optional[Concept] = None
    verificationStatus: Optional[Concept] = None
    category: Optional[tuple[Concept, ...]] = None
    # read only for problem-list entries and our own suggestions, as the JSON has them
    abatementDateTime: Any = None
    abatementPeriod: Any = None
    abatementAge: Any = None
    abatementRange: Any = None
    abatementString: Any = None
    abatementBoolean: Any = None
    identifier: Any = None


class Procedure(_Resource, tag="Procedure"):
    status: Optional[str] = None
    code: ConceptJson = NULL
    subject: Optional[Reference] = None
    encounter: Optional[Reference] = None
    performedDateTime: Optional[str] = None
    performedPeriod: Optional[Period] = None


class MedicationRequest(_Resource, tag="MedicationRequest"):
    status: Optional[str] = None
    intent: Optional[str] = None
    medicationCodeableConcept: ConceptJson = NULL
    medicationReference: Optional[Reference] = None
    subject: Optional[Reference] = None
    encounter: Optional[Reference] = None
    authoredOn: Optional[str] = None


class Medication(_Resource, tag="Medication"):
    code: Optional[Concept] = None


class DocumentReference(_Resource, tag="DocumentReference"):
    status: Optional[str] = None
    docStatus: Any = None
    subject: Optional[Reference] = None
    date: Optional[str] = None
    content: Optional[tuple[Content, ...]] = None
    context: Optional[DocumentContext] = None
    type: Optional[Concept] = None


RESOURCE_TYPES = (Patient, Encounter, Condition, Procedure, MedicationRequest, Medication,
                  DocumentReference)
#: what a failed decode raises: not JSON, not one of these types, or a field of the wrong shape
DECODE_ERRORS = (msgspec.MsgspecError, ValueError)

_DECODER = msgspec.json.Decoder(Union[RESOURCE_TYPES])   # type: ignore[valid-type]
decode_concept = msgspec.json.Decoder(Optional[Concept]).decode
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]+").fullmatch


def decode_resource(data) -> "_Resource":
    """The compact struct of one resource's JSON (bytes or msgspec Raw); raises one of
    DECODE_ERRORS for anything else, including a bad id. A code or reference of white space
    only decodes: give the struct to `CompactReader`, which declines it."""
    resource = _DECODER.decode(data)
    rid = resource.id
    if rid is not None and _FHIR_ID(rid) is None:
        raise ValueError("not a FHIR id")
    return resource


def concept_dict(concept: Concept | None) -> dict | None:
    """The concept as the JSON reader would give it, less the fields no mapping reads."""
    if concept is None:
        return None
    out: dict[str, Any] = {}
    if concept.coding is not None:
        out["coding"] = [{k: v for k, v in (("system", c.system), ("code", c.code), ("display", c.display))
                          if v is not None} for c in concept.coding]
    if concept.text is not None:
        out["text"] = concept.text
    return out


def period_dict(period: Period | None) -> dict | None:
    if period is None:
        return None
    return {k: v for k, v in (("start", period.start), ("end", period.end)) if v is not None}
