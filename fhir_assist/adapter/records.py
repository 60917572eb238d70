"""The small records the timeline builder reduces each resource to while reading.

A million-resource export must fit in a few GB, so each resource keeps only what
assembling visits needs; both readers (plain dicts and the compact decoded form)
produce the same records. They are msgspec structs: built in C (a quarter of the
cost of a Python __init__), smaller than slotted objects, and left out of the cyclic
collector's walks (gc=False: a record holds lists and strings, never itself).
"""
from __future__ import annotations

from typing import Any

from msgspec import Struct


def service_name(codings, text) -> str | None:
    """Encounter.serviceType as one token: the first coding's "system|code", else its text
    (lower case, spaces collapsed); None when neither says anything. The admitting service
    follows the stay's main problem (cardiology, orthopedics), so the ranker reads it."""
    for system, code in codings:
        if isinstance(code, str) and code.strip():
            return f"{system}|{code.strip()}" if isinstance(system, str) and system else code.strip()
    if isinstance(text, str) and text.strip():
        return " ".join(text.lower().split())
    return None


class EncounterRecord(Struct, gc=False):
    id: Any = None
    patient: Any = None
    start: Any = None
    end: Any = None
    cls: Any = None
    part_of: Any = None
    diagnoses: Any = None          # [(Condition id, rank or None)]
    reason_codes: Any = None
    reason_unknown: Any = None
    reason_refs: Any = None
    open: bool = False
    service: Any = None            # service_name of Encounter.serviceType


class ItemRecord(Struct, gc=False):
    """A Condition, Procedure, MedicationRequest or DocumentReference, reduced."""
    kind: str
    patient: Any
    encounters: list              # ids named by the resource itself
    dates: list                   # [(datetime, date_only, ...)] in order of preference
    codes: Any                    # list[Code] | RxCUIs | MedicationRef | note text (read, never changed)
    unknown: Any                  # list[Code] | Code | None
    order: int


class MedicationRef(Struct, gc=False):
    """A MedicationRequest's medicationReference to a Medication resource."""
    id: str
