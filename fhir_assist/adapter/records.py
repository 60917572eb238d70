"""The small records the timeline builder reduces each resource to while reading.

A million-resource export must fit in a few GB, so each resource keeps only what
assembling visits needs; both readers (plain dicts and the compact decoded form)
produce the same records.
"""
from __future__ import annotations


class EncounterRecord:
    __slots__ = ("id", "patient", "start", "end", "cls", "part_of", "diagnoses",
                 "reason_codes", "reason_unknown", "reason_refs", "open", "service")


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


class ItemRecord:
    """A Condition, Procedure, MedicationRequest or DocumentReference, reduced."""
    __slots__ = ("kind", "patient", "encounters", "dates", "codes", "unknown", "order")

    def __init__(self, kind, patient, encounters, dates, codes, unknown, order):
        self.kind = kind
        self.patient = patient
        self.encounters = encounters      # ids named by the resource itself
        self.dates = dates                # [(datetime, date_only)] in order of preference
        self.codes = codes                # list[Code] | RxCUIs | MedicationRef | note text
        self.unknown = unknown            # list[Code] | Code | None
        self.order = order


class MedicationRef:
    """A MedicationRequest's medicationReference to a Medication resource."""
    __slots__ = ("id",)

    def __init__(self, medication_id: str):
        self.id = medication_id
