"""The records every model of the zoo is fed from: a patient's ordered Visits and their Codes.

Codes are kept with their canonical system URL (see `mappings.codesystems`) and in
FHIR's dotted form ("E11.65", "428.0").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from mappings import codesystems


@dataclass(frozen=True)
class Code:
    system: str          # canonical URL, e.g. mappings.codesystems.ICD10CM
    code: str            # normalised: upper-case, dotted ICD form
    display: str | None = field(default=None, compare=False, hash=False)


#: Visit.coding: what the visit's codes say. Visits known only by Z-codes (check-ups,
#: vaccinations) or only by their reason are kept, labelled, never dropped.
VISIT_CODING = ("diagnosed", "z-codes-only", "reason-only", "uncoded")


def is_factor_code(code: Code) -> bool:
    """ICD-10 Z-codes and ICD-9-CM V-codes: encounters for check-ups, vaccination, status, history."""
    prefix = "V" if code.system == codesystems.ICD9CM else "Z"
    return code.code.startswith(prefix)


def coding_of(diagnoses: list[Code], reasons: list[Code]) -> str:
    if any(not is_factor_code(c) for c in diagnoses):
        return "diagnosed"
    if diagnoses:
        return "z-codes-only"
    return "reason-only" if reasons else "uncoded"


@dataclass
class Visit:
    encounter_id: str
    start: datetime | None
    end: datetime | None
    encounter_class: str | None = None                 # IMP, AMB, EMER, … (v3-ActCode)
    diagnoses: list[Code] = field(default_factory=list)   # principal first where the source says so
    reason_codes: list[Code] = field(default_factory=list)
    procedures: list[Code] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)  # RxCUIs (ingredient where known, else the drug's own), sorted, unique
    unmapped_medications: list[Code] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)        # plain text of DocumentReference notes
    age: float | None = None                              # years at the start of the visit
    part_of: str | None = None                            # Encounter.partOf id, if any
    service: str | None = None                            # Encounter.serviceType (records.service_name)
    # Added by the builder (defaults keep hand-made Visits valid):
    unknown_codes: list[Code] = field(default_factory=list)   # dx/procedure codes outside our vocabularies
    merged_encounters: list[str] = field(default_factory=list)  # the other encounters of this visit's episode
    encounter_ids: list[str] = field(default_factory=list)  # every Encounter this visit covers, encounter_id first
    linked_to: str | None = None      # partOf target that is a separate visit (e.g. a readmission's index stay)
    open: bool = False                # still in progress: no end yet
    coding: str = ""                  # diagnosed | z-codes-only | reason-only | uncoded (see VISIT_CODING)
    problem_list: list[Code] = field(default_factory=list)  # active problem-list codes just before the visit started

    def covers(self, encounter_id: str) -> bool:
        """Whether the Encounter is this visit or one of the parts joined into it."""
        return encounter_id == self.encounter_id or encounter_id in (self.encounter_ids or self.merged_encounters)


@dataclass
class PatientTimeline:
    patient_id: str
    sex: str | None            # administrative gender: male | female | other | unknown
    birth_date: date | None
    visits: list[Visit] = field(default_factory=list)  # ordered by period start
    problems: list = field(default_factory=list)       # adapter.problem_list.ProblemEntry, any state
