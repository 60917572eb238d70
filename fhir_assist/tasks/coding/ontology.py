"""Label tokens of ICD codes: the hierarchy levels above a code, its CCS category,
the token format ("icd10:E11.65", see `fhir_assist.fhir.tokens`) and descriptions."""
from __future__ import annotations

import functools

from fhir_assist.fhir.tokens import code_token, split_token

ICD_LEVELS = ("chapter", "block", "3char", "4char", "billing")
HEADS = ICD_LEVELS + ("ccs",)
SYSTEM_SHORT = {"icd10": "http://hl7.org/fhir/sid/icd-10-cm", "icd9": "http://hl7.org/fhir/sid/icd-9-cm"}
SHORT_OF_SYSTEM = {v: k for k, v in SYSTEM_SHORT.items()}


def hierarchy(system: str):
    from mappings import icd
    return icd.hierarchy_for(system)


@functools.lru_cache(maxsize=65536)
def code_labels(system: str, code: str) -> dict[str, str] | None:
    """{head: label token} for one diagnosis code (None when it is not a valid ICD code).
    Cached: a cohort repeats the same few thousand codes; callers must not mutate it."""
    from mappings import ccs

    short = SHORT_OF_SYSTEM.get(system)
    if short is None:
        return None
    tree = hierarchy(system)
    normalized = tree.normalize(code)
    if normalized is None:
        return None
    out = {level: code_token(short, node) for level, node in tree.rollup(normalized).items()}
    category = ccs.category_for(system, normalized)
    if category:
        out["ccs"] = category
    return out


def parse_label(token: str) -> tuple[str | None, str]:
    """"icd10:E11.65" → (ICD-10-CM URL, "E11.65"); CCS tokens → (None, token)."""
    parts = split_token(token)
    if parts is not None and parts[0] in SYSTEM_SHORT:
        return SYSTEM_SHORT[parts[0]], parts[1]
    return None, token


def label_description(head: str, token: str) -> str | None:
    system, node = parse_label(token)
    try:
        if system is None:
            from mappings import ccs
            return ccs.category_description(token)
        tree = hierarchy(system)
        if head == "billing":
            return tree.description(node)
        return tree.node_description(head, node)
    except Exception:  # a description is a nicety; never fail a ranking for it
        return None


def icd_system(code) -> str | None:
    from mappings import codesystems

    system = codesystems.canonical_system(code.system) if code.system else None
    if system in SHORT_OF_SYSTEM:
        return system
    if system is None:
        return codesystems.detect_icd_system(code.code)
    return None

