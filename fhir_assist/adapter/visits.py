"""The records every model of the zoo is fed from: a patient's ordered Visits and their Codes.

Codes are kept with their canonical system URL (see `mappings.codesystems`) and in
FHIR's dotted form ("E11.65", "428.0").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Code:
    system: str          # canonical URL, e.g. mappings.codesystems.ICD10CM
    code: str            # normalised: upper-case, dotted ICD form
    display: str | None = field(default=None, compare=False, hash=False)


@dataclass
class Visit:
    encounter_id: str
    start: datetime | None
    end: datetime | None
    encounter_class: str | None = None                 # IMP, AMB, EMER, … (v3-ActCode)
    diagnoses: list[Code] = field(default_factory=list)   # principal first where the source says so
    reason_codes: list[Code] = field(default_factory=list)
    procedures: list[Code] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)  # RxNorm ingredient RxCUIs, sorted, unique
    unmapped_medications: list[Code] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)        # plain text of DocumentReference notes
    age: float | None = None                              # years at the start of the visit
    part_of: str | None = None                            # Encounter.partOf id, if any
    # Added by the builder (defaults keep hand-made Visits valid):
    unknown_codes: list[Code] = field(default_factory=list)   # dx/procedure codes outside our vocabularies
    merged_encounters: list[str] = field(default_factory=list)  # sub-encounters (partOf) folded into this visit


@dataclass
class PatientTimeline:
    patient_id: str
    sex: str | None            # administrative gender: male | female | other | unknown
    birth_date: date | None
    visits: list[Visit] = field(default_factory=list)  # ordered by period start
