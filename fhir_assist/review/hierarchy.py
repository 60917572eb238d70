"""Where a code sits in its ICD hierarchy, for the coder: chapter › block › code."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathStep:
    level: str
    node: str
    description: str | None


@dataclass(frozen=True)
class CodeInfo:
    code: str
    description: str | None
    path: tuple[PathStep, ...]       # chapter, block (the code itself is `code`)
    billable: bool | None


@functools.lru_cache(maxsize=1)
def _icd():
    from mappings import icd
    return icd


@functools.lru_cache(maxsize=20_000)
def code_info(system: str | None, code: str | None) -> CodeInfo:
    if not code:
        return CodeInfo(code or "", None, (), None)
    try:
        hierarchy = _icd().hierarchy_for(system) if system else None
    except (KeyError, ValueError, LookupError):
        hierarchy = None
    if hierarchy is None:
        return CodeInfo(code, None, (), None)
    normalized = hierarchy.normalize(code) or code
    try:
        rollup = hierarchy.rollup(normalized)
    except (KeyError, ValueError, LookupError):
        rollup = {}
    steps = []
    for level in ("chapter", "block"):
        node = rollup.get(level)
        if node:
            steps.append(PathStep(level, node, hierarchy.node_description(level, node)))
    return CodeInfo(normalized, hierarchy.description(normalized), tuple(steps),
                    hierarchy.is_billable(normalized) if hierarchy.is_valid(normalized) else None)


def search_codes(text: str, limit: int = 15) -> list[tuple[str, str]]:
    """Billable ICD-10-CM codes matching a code prefix or words: only billable codes can
    be coded on a claim, so categories are not offered."""
    text = (text or "").strip()
    if len(text) < 2:
        return []
    hierarchy = _icd().icd10cm()
    found = hierarchy.search(text, limit=limit * 4)
    return [hit for hit in found if hierarchy.is_billable(hit[0])][:limit]
