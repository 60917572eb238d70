"""Descriptions of procedure codes: ICD-10-PCS (CMS FY2024) and ICD-9-CM volume 3 (CMS v32).

ICD-9-CM procedures share FHIR's ICD-9-CM URL with diagnoses; they are told apart by
shape: two digits, a dot, one or two digits ("45.13"), against three-digit diagnoses.
"""
from __future__ import annotations

import re
import threading

from ._icd_build import icd9_procedure_descriptions, icd10pcs_descriptions
from .codesystems import ICD9CM, ICD10PCS, canonical_system

_lock = threading.Lock()
_pcs: dict[str, str] | None = None
_icd9: dict[str, str] | None = None

_ICD9_PROC_SHAPE = re.compile(r"^\d{2}(?:\.?\d{1,2})?$")


def _pcs_table() -> dict[str, str]:
    global _pcs
    if _pcs is None:
        with _lock:
            if _pcs is None:
                _pcs = icd10pcs_descriptions()
    return _pcs


def _icd9_table() -> dict[str, str]:
    global _icd9
    if _icd9 is None:
        with _lock:
            if _icd9 is None:
                _icd9 = icd9_procedure_descriptions()
    return _icd9


def normalize_pcs(code: str | None) -> str | None:
    """Upper-case 7-character ICD-10-PCS code if it is in the code set, else None."""
    key = re.sub(r"[\s.\-]", "", (code or "").upper())
    return key if key in _pcs_table() else None


def normalize_icd9_procedure(code: str | None) -> str | None:
    """Dotted ICD-9-CM procedure code ("4513" -> "45.13") if it is in the code set, else None."""
    text = (code or "").strip()
    if not _ICD9_PROC_SHAPE.match(text):
        return None
    key = text.replace(".", "")
    if key not in _icd9_table():
        return None
    return key if len(key) <= 2 else f"{key[:2]}.{key[2:]}"


def procedure_description(system: str | None, code: str | None) -> str | None:
    """Description of an ICD-10-PCS or ICD-9-CM procedure code; None if unknown."""
    canonical = canonical_system(system)
    if canonical == ICD10PCS:
        key = normalize_pcs(code)
        return _pcs_table()[key] if key else None
    if canonical == ICD9CM:
        dotted = normalize_icd9_procedure(code)
        return _icd9_table()[dotted.replace(".", "")] if dotted else None
    return None


def pcs_codes() -> list[str]:
    return sorted(_pcs_table())


def icd9_procedure_codes() -> list[str]:
    return [k if len(k) <= 2 else f"{k[:2]}.{k[2:]}" for k in sorted(_icd9_table())]
