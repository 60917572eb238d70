"""Building CDS Hooks 2.0 cards, suggestions and actions.

Everything returned to the EHR is built here, so the response rules live in one
place: summaries under 140 characters, an indicator from the allowed set, a
source with label/url/topic, a uuid on every card and suggestion (the feedback
endpoint refers to them), `selectionBehavior` whenever there are suggestions,
a `display` on every override reason, `resourceId` (not a resource) on deletes,
and no empty strings, lists or objects anywhere.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from fhir_assist.fhir_server import PROJECT_URL

INDICATORS = ("info", "warning", "critical")
SUMMARY_MAX = 139   # the spec asks for "<140 characters"

CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MEDREQ_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# Code systems of card topics and override reasons: fixed, whatever the deployment, so
# feedback from every site can be compared. Same base as the write-back extensions.
TOPIC_SYSTEM = f"{PROJECT_URL}/CodeSystem/cds-topics"
OVERRIDE_REASON_SYSTEM = f"{PROJECT_URL}/CodeSystem/override-reasons"


@dataclass(frozen=True)
class CardSource:
    label: str
    url: str
    topic_code: str
    topic_display: str

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "url": self.url,
            "topic": {"system": TOPIC_SYSTEM, "code": self.topic_code, "display": self.topic_display},
        }


def override_reasons(kind: str) -> list[dict]:
    """Reasons a clinician or coder can give when dismissing a card (each with a display)."""
    system = OVERRIDE_REASON_SYSTEM
    common = [
        ("not-clinically-appropriate", "Not clinically appropriate for this patient"),
        ("data-incomplete", "Patient data shown to the model is wrong or incomplete"),
        ("already-addressed", "Already addressed elsewhere"),
    ]
    specific = {
        "medication": [("patient-preference", "Patient preference"),
                       ("benefit-outweighs-risk", "Benefit outweighs the interaction risk")],
        "coding": [("not-documented", "Not supported by the documentation"),
                   ("coded-differently", "Coded with a different code")],
    }.get(kind, [])
    return [{"system": system, "code": code, "display": display} for code, display in common + specific]


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def new_uuid() -> str:
    """A random (version 4) UUID as text, what `str(uuid.uuid4())` gives without building a
    UUID object (a card answer names a dozen or more of them)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40          # version 4
    raw[8] = raw[8] & 0x3F | 0x80          # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def card(summary: str, *, indicator: str, source: dict, detail: str | None = None,
         suggestions: list[dict] | None = None, selection_behavior: str | None = None,
         reasons: list[dict] | None = None, links: list[dict] | None = None,
         extension: dict | None = None) -> dict:
    if indicator not in INDICATORS:
        raise ValueError(f"indicator {indicator!r} is not one of {INDICATORS}")
    out: dict = {"uuid": new_uuid(), "summary": shorten(summary), "indicator": indicator,
                 "source": source}
    if detail and detail.strip():
        out["detail"] = detail.strip()
    if suggestions:
        out["suggestions"] = suggestions
        out["selectionBehavior"] = selection_behavior or "any"
        if out["selectionBehavior"] == "at-most-one":
            recommended = [s for s in suggestions if s.get("isRecommended")]
            for extra in recommended[1:]:   # the spec allows one recommended suggestion here
                extra.pop("isRecommended", None)
    if reasons:
        out["overrideReasons"] = reasons
    if links:
        out["links"] = links
    if extension:
        out["extension"] = extension
    return out


def suggestion(label: str, actions: list[dict], *, recommended: bool | None = None) -> dict:
    out: dict = {"label": shorten(label, 200), "uuid": new_uuid()}
    if recommended is not None:
        out["isRecommended"] = bool(recommended)
    if actions:
        out["actions"] = actions
    return out


def create_action(description: str, resource: dict) -> dict:
    return {"type": "create", "description": description, "resource": resource}


def update_action(description: str, resource: dict) -> dict:
    return {"type": "update", "description": description, "resource": resource}


def delete_action(description: str, resource_type: str, resource_id: str) -> dict:
    return {"type": "delete", "description": description, "resourceId": f"{resource_type}/{resource_id}"}


def link(label: str, url: str) -> dict:
    return {"label": label, "url": url, "type": "absolute"}


# ----------------------------------------------------------------- resources
def medication_request(rxcui: str, name: str, patient_id: str, encounter_id: str | None,
                       requester: str | None) -> dict:
    """A draft order the clinician can accept as is (the EHR assigns the real id)."""
    resource: dict = {
        "resourceType": "MedicationRequest",
        "id": new_uuid(),
        "status": "draft",
        "intent": "proposal",
        "category": [{"coding": [{"system": MEDREQ_CATEGORY, "code": "inpatient", "display": "Inpatient"}]}],
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxcui, "display": name}],
            "text": name,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if requester and "/" in requester:
        resource["requester"] = {"reference": requester}
    return resource


def stopped(resource: dict, reason: str) -> dict:
    """The full resource with status 'stopped' (an update carries the whole resource)."""
    out = copy.deepcopy(resource)
    out["status"] = "stopped"
    out["statusReason"] = {"text": reason}
    return out


def confirmed(condition: dict) -> dict:
    out = copy.deepcopy(condition)
    out["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed",
                                             "display": "Confirmed"}]}
    return out


# ------------------------------------------------------------------ markdown
def md_escape(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("*", "\\*").replace("_", "\\_")


def md_table(header: list[str], rows: list[list[object]]) -> str:
    if not rows:
        return ""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def unknown_codes_note(unknown: list) -> str:
    """A markdown paragraph naming the codes the models could not use (never an error)."""
    if not unknown:
        return ""
    shown = []
    for item in unknown[:12]:
        system = getattr(item, "system", None) or (item.get("system") if isinstance(item, dict) else None)
        code = getattr(item, "code", None) or (item.get("code") if isinstance(item, dict) else str(item))
        short = (system or "no system").rstrip("/").rsplit("/", 1)[-1]
        shown.append(f"`{code}` ({short})")
    more = f" and {len(unknown) - 12} more" if len(unknown) > 12 else ""
    return (f"**Not recognised by the model** ({len(unknown)} code{'s' if len(unknown) != 1 else ''}, "
            f"ignored): {', '.join(shown)}{more}.")
