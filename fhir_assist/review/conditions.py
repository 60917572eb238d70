"""Reading the Conditions the worklist shows: what a suggestion looks like on the FHIR server.

The write-back (`fhir_assist.fhir_server`) marks each suggested Condition with rank,
score, model version and the list's RE@R cut-off in extensions, and an identifier
that makes its create conditional; Conditions without those are codes that clinicians
or coders entered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fhir_assist.fhir.datetimes import parse_fhir_datetime
from fhir_assist.fhir.references import typed_reference_id
from mappings import codesystems

from . import fhir_marks

ICD_SYSTEMS = (codesystems.ICD10CM, codesystems.ICD9CM)


@dataclass
class ConditionView:
    id: str
    patient: str | None
    encounter: str | None
    system: str | None
    code: str | None
    display: str | None
    status: str                      # verificationStatus: provisional | confirmed | refuted | …
    recorded: str | None
    suggested: bool                  # written by the coding suggestions
    coder_added: bool = False        # added by a coder in the worklist
    rank: int | None = None
    score: float | None = None
    model_version: str | None = None
    cutoff_k: int | None = None
    target_recall: float | None = None
    notes: list[str] = field(default_factory=list)
    resource: dict = field(default_factory=dict, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in ("provisional", "unconfirmed", "differential")

    @property
    def origin(self) -> str:
        if self.suggested:
            return "accepted suggestion"
        return "added by a coder" if self.coder_added else "recorded in the EHR"

    @property
    def recorded_at(self) -> datetime | None:
        return parse_fhir_datetime(self.recorded, keep_offset=True)


def icd_coding(resource: dict) -> dict | None:
    """The ICD coding of a Condition (any known spelling of the system), else the first coding."""
    codings = ((resource.get("code") or {}).get("coding")) or []
    for coding in codings:
        system = codesystems.canonical_system(coding.get("system"))
        if system in ICD_SYSTEMS and coding.get("code"):
            return {**coding, "system": system}
    return codings[0] if codings else None


def status_code(concept: dict | None) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return coding["code"]
    return None


def parse_condition(resource: dict) -> ConditionView:
    coding = icd_coding(resource) or {}
    marks = fhir_marks.read_marks(resource)
    text = ((resource.get("code") or {}).get("text"))
    return ConditionView(
        id=resource.get("id") or "",
        patient=typed_reference_id(resource.get("subject"), "Patient"),
        encounter=typed_reference_id(resource.get("encounter"), "Encounter"),
        system=coding.get("system"),
        code=coding.get("code"),
        display=coding.get("display") or text,
        status=status_code(resource.get("verificationStatus")) or "unknown",
        recorded=resource.get("recordedDate") or (resource.get("meta") or {}).get("lastUpdated"),
        suggested=marks.suggested,
        coder_added=marks.coder_added,
        rank=marks.rank,
        score=marks.score,
        model_version=marks.model_version,
        cutoff_k=marks.cutoff_k,
        target_recall=marks.target_recall,
        notes=[n.get("text") for n in resource.get("note") or [] if n.get("text")],
        resource=resource,
    )
