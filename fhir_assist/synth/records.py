"""What the simulation produces: one synthetic patient and their visits, before they are
written as FHIR resources."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class VisitRecord:
    index: int
    start: datetime
    end: datetime
    setting: str                                   # IMP | EMER | AMB
    # [(ICD-10-CM code, role)], principal first; role: acute | chronic | secondary
    diagnoses: list = field(default_factory=list)
    procedures: list = field(default_factory=list)  # [(ICD-10-PCS or None, ICD-9-CM proc or None)]
    medications: list = field(default_factory=list)  # RxCUIs, sorted
    acute: list = field(default_factory=list)       # acute keys, principal first
    chronic: list = field(default_factory=list)     # all active chronic keys (coded or not)
    chronic_codes: dict = field(default_factory=dict)  # chronic key → code used this visit
    cancer_site: str | None = None
    disposition: str = "home"
    service: str = "Medicine"
    ddi_pairs: int = 0
    held: list = field(default_factory=list)        # chronic drug classes held during this stay
    held_drugs: list = field(default_factory=list)  # the patient's RxCUIs of those classes
    # Set by the ambulatory profile only (see synth.ambulatory):
    kind: str = "stay"                              # checkup | vaccination | followup | sick | ed | admission | readmission
    reasons: list = field(default_factory=list)     # Encounter.reasonCode ICD-10-CM codes
    part_of: int | None = None                      # index of the visit this Encounter is partOf
    open: bool = False                              # still in progress: no period end
    outpatient_procedures: list = field(default_factory=list)  # [(system, code, text)] CPT/HCPCS/SNOMED/local
    other_drugs: list = field(default_factory=list)  # [(RxCUI, name)] outside the curated ingredient list


@dataclass
class PatientRecord:
    index: int
    sex: str
    birth_date: date
    given: str
    family: str
    tz: str
    visits: list = field(default_factory=list)
