"""FHIR resource ids and resource type names.

An id is 1–64 letters, digits, '-' or '.' (R4 `id` datatype); anything else must
never reach a URL path or a search parameter.
"""
from __future__ import annotations

import re
from typing import Any

FHIR_ID_PATTERN = r"[A-Za-z0-9\-.]{1,64}"
RESOURCE_TYPE_PATTERN = r"[A-Z][A-Za-z]{1,63}"
FHIR_ID = re.compile(FHIR_ID_PATTERN)
RESOURCE_TYPE = re.compile(RESOURCE_TYPE_PATTERN)
#: a strict relative reference, "Type/id"
RELATIVE_REFERENCE = re.compile(f"({RESOURCE_TYPE_PATTERN})/({FHIR_ID_PATTERN})")


def is_fhir_id(value: Any) -> bool:
    """True for a string that is a valid FHIR id."""
    return type(value) is str and FHIR_ID.fullmatch(value) is not None


def bare_id(reference_or_id: Any, resource_type: str) -> str:
    """"123" or "Patient/123" → "123"; anything that is not a FHIR id raises ValueError
    (it would otherwise end up in a URL path)."""
    if not RESOURCE_TYPE.fullmatch(str(resource_type)):
        raise ValueError(f"not a FHIR resource type: {resource_type!r}")
    text = str(reference_or_id).strip()
    prefix = f"{resource_type}/"
    if text.startswith(prefix):
        text = text[len(prefix):]
    if not is_fhir_id(text) or text.strip(".") == "":
        raise ValueError(f"expected a {resource_type} id or '{resource_type}/id', got {reference_or_id!r}")
    return text
