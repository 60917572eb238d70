"""The marks the write-back puts on a suggested Condition (see `fhir_assist.fhir_server`),
and the ones the worklist adds to the Conditions a coder enters."""
from __future__ import annotations

from dataclasses import dataclass

from fhir_assist import fhir_server as fs

# The list's RE@R cut-off K, as the write-back records it on the Condition.
EXT_CUTOFF_K = fs.EXT_CUTOFF_K
EXT_TARGET_RECALL = fs.EXT_TARGET_RECALL
# Conditions a coder added in the worklist: an identifier makes their create conditional.
CODER_IDENTIFIER_SYSTEM = f"{fs.PROJECT_URL}/identifier/coder-added-condition"
CODER_TAG = {"system": fs.SUGGESTION_TAG["system"], "code": "coder-added",
             "display": "Added by a coder in the fhir-assist worklist"}


@dataclass(frozen=True)
class Marks:
    suggested: bool
    coder_added: bool
    rank: int | None
    score: float | None
    model_version: str | None
    cutoff_k: int | None
    target_recall: float | None


def _value(ext: dict):
    for key in ("valueInteger", "valueDecimal", "valueString", "valuePositiveInt", "valueUnsignedInt"):
        if key in ext:
            return ext[key]
    return None


def read_marks(resource: dict) -> Marks:
    values = {ext.get("url"): _value(ext) for ext in resource.get("extension") or [] if isinstance(ext, dict)}
    identifiers = {i.get("system") for i in resource.get("identifier") or [] if isinstance(i, dict)}
    tags = {(t.get("system"), t.get("code")) for t in (resource.get("meta") or {}).get("tag") or []}
    suggested = (fs.SUGGESTION_IDENTIFIER_SYSTEM in identifiers
                 or (fs.SUGGESTION_TAG["system"], fs.SUGGESTION_TAG["code"]) in tags)

    def number(url, kind):
        try:
            return kind(values[url]) if values.get(url) is not None else None
        except (TypeError, ValueError):
            return None

    coder_added = (CODER_IDENTIFIER_SYSTEM in identifiers
                   or (CODER_TAG["system"], CODER_TAG["code"]) in tags)
    return Marks(
        suggested=suggested,
        coder_added=coder_added,
        rank=number(fs.EXT_SUGGESTION_RANK, int),
        score=number(fs.EXT_SUGGESTION_SCORE, float),
        model_version=values.get(fs.EXT_MODEL_VERSION),
        cutoff_k=number(EXT_CUTOFF_K, int),
        target_recall=number(EXT_TARGET_RECALL, float),
    )


def suggestion_search(limit: int) -> dict:
    """Search parameters of every suggested Condition (any verification status)."""
    return {"identifier": f"{fs.SUGGESTION_IDENTIFIER_SYSTEM}|", "_count": str(min(limit, 1000))}


def coder_identifier(patient: str, encounter: str, system: str, code: str) -> dict:
    return {"system": CODER_IDENTIFIER_SYSTEM,
            "value": fs.suggestion_identifier(patient, encounter, system, code)}
