"""FHIR References in every form a real export uses.

"Patient/x", "Patient/x/_history/2", an absolute URL ("https://ehr/fhir/Patient/x"),
"urn:uuid:x" / "urn:oid:x" (transaction bundles), "#x" (a contained resource), or a
bare "x". Conditional references ("Patient?identifier=…") only a server can resolve.
"""
from __future__ import annotations

from typing import Any


def _text(reference: Any) -> str | None:
    if isinstance(reference, dict):
        reference = reference.get("reference")
    return reference if isinstance(reference, str) else None


def split_reference(reference: Any) -> tuple[str | None, str | None]:
    """(resource type, id) a Reference (dict or string) names.

    The type is None where the form does not say (urn:uuid:, "#contained", a bare id);
    the id is None for conditional references and empty or unreadable values.
    """
    text = _text(reference)
    if text is None:
        return None, None
    kind, sep, rid = text.partition("/")
    if sep and "/" not in rid and ":" not in kind and " " not in text and "?" not in text:
        return kind, rid or None       # "Type/id", the usual form
    text = text.strip()
    if not text:
        return None, None
    if text.startswith("#"):
        return None, text
    if text.startswith(("urn:uuid:", "urn:oid:")):
        return None, text.split(":", 2)[2] or None
    if "?" in text:
        return None, None
    parts = text.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    if len(parts) == 1:
        return None, parts[0] or None
    return parts[-2], parts[-1] or None


def reference_id(reference: Any, expected_type: str | None = None) -> str | None:
    """The id a Reference points at ("#x" kept as is for contained resources).

    None if it names a type other than `expected_type`, or is a conditional reference.
    """
    text = _text(reference)
    if text is None:
        return None
    kind, sep, rid = text.partition("/")
    if sep and "/" not in rid and ":" not in kind and " " not in text and "?" not in text:
        # Fast path: ingest resolves millions of these.
        if expected_type and kind != expected_type:
            return None
        return rid or None
    kind, rid = split_reference(text)
    if expected_type and kind is not None and kind != expected_type:
        return None
    return rid


def typed_reference_id(reference: Any, resource_type: str) -> str | None:
    """The id of a Reference that says it points at `resource_type` (bare ids, urn:uuid:
    and contained references, which do not say, give None)."""
    kind, rid = split_reference(reference)
    return rid if kind == resource_type else None
