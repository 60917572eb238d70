"""How the service recognises the resources it wrote itself.

Every suggested Condition the write-back creates carries our tag in `meta.tag` and an
identifier in our system (`fhir_assist.fhir_server.build_suggested_condition`). Such a
Condition is a guess of ours, not a clinical statement: while it is still provisional it
must never reach a model as an input, or a second call for the same encounter would
read the first call's guesses as recorded diagnoses and suggest the next codes down the
list. Once a coder confirms it, it is a diagnosis like any other.
"""
from __future__ import annotations

from typing import Any

# Every URL this project defines (extensions, identifier systems, tags) hangs off this base.
PROJECT_URL = "https://fhir-assist.example.org"
SUGGESTION_IDENTIFIER_SYSTEM = f"{PROJECT_URL}/identifier/suggested-condition"
SUGGESTION_TAG = {"system": f"{PROJECT_URL}/CodeSystem/tags", "code": "suggested",
                  "display": "Suggested by fhir-assist"}
# Verification statuses under which a suggestion of ours is still only a suggestion.
UNREVIEWED_STATUSES = frozenset({"provisional", "unconfirmed", "differential"})


def is_our_suggestion(resource: Any) -> bool:
    """True for a Condition our write-back created (tagged or identified as ours)."""
    if not isinstance(resource, dict):
        return False
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, dict) and tag.get("system") == SUGGESTION_TAG["system"] \
                and tag.get("code") == SUGGESTION_TAG["code"]:
            return True
    identifiers = resource.get("identifier")
    return any(isinstance(i, dict) and i.get("system") == SUGGESTION_IDENTIFIER_SYSTEM
               for i in (identifiers if isinstance(identifiers, list) else ()))


def verification_status(resource: dict) -> str | None:
    concept = resource.get("verificationStatus")
    for coding in (concept.get("coding") if isinstance(concept, dict) else None) or []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def is_unreviewed_suggestion(resource: Any) -> bool:
    """A suggestion of ours no coder has confirmed yet: never a model input."""
    if not is_our_suggestion(resource):
        return False
    status = verification_status(resource)
    return status is None or status in UNREVIEWED_STATUSES
