"""RxNorm ingredient-level normalisation and the drug–drug-interaction pair list.

Medication codings arrive as ingredient RxCUIs, as product RxCUIs (clinical or branded
drugs), or only as text ("metoprolol succinate 50 MG Extended Release Oral Tablet",
"Lasix"). `ingredient_for` reduces all of these to the ingredient RxCUI that the models
use as the medication vocabulary; `ingredients_for` keeps every ingredient of a
combination product.

Data (see mappings/README.md for provenance):
  data/rxnorm_ingredients.csv  rxcui, name, drug_class, synonyms (";"-separated)
  data/rxnorm_products.csv     product_rxcui (may be blank for brand-only rows), name,
                               synonyms, ingredient_rxcuis
  data/ddi_pairs.csv           rxcui_a, rxcui_b, name_a, name_b, severity, effect, source
"""
from __future__ import annotations

import csv
import re
import threading
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ._sources import SHIPPED

SEVERITIES = ("contraindicated", "major", "moderate")


@dataclass(frozen=True)
class Ingredient:
    rxcui: str
    name: str
    drug_class: str
    synonyms: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Interaction:
    rxcui_a: str
    rxcui_b: str
    severity: str
    effect: str
    source: str


class RxNormDataError(RuntimeError):
    """A shipped RxNorm data file is inconsistent (duplicate names, unknown RxCUIs, ...)."""


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.lower()))


class _Tables:
    def __init__(self) -> None:
        self.ingredients: dict[str, Ingredient] = {}
        self.products: dict[str, tuple[str, ...]] = {}
        self.names: dict[tuple[str, ...], tuple[str, ...]] = {}  # word tuple -> ingredient RxCUIs
        self.longest_name = 1
        self.interactions: dict[frozenset[str], Interaction] = {}
        self._load_ingredients()
        self._load_products()
        self._load_interactions()

    def _add_name(self, text: str, rxcuis: tuple[str, ...], origin: str) -> None:
        key = _words(text)
        if not key:
            return
        known = self.names.get(key)
        if known is not None and known != rxcuis:
            raise RxNormDataError(f"name {text!r} ({origin}) is used for both {known} and {rxcuis}")
        self.names[key] = rxcuis
        self.longest_name = max(self.longest_name, len(key))

    def _load_ingredients(self) -> None:
        with open(SHIPPED / "rxnorm_ingredients.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rxcui = row["rxcui"].strip()
                synonyms = tuple(s.strip() for s in row["synonyms"].split(";") if s.strip())
                if rxcui in self.ingredients:
                    raise RxNormDataError(f"duplicate ingredient RxCUI {rxcui}")
                ingredient = Ingredient(rxcui, row["name"].strip(), row["drug_class"].strip(), synonyms)
                self.ingredients[rxcui] = ingredient
                for text in (ingredient.name, *synonyms):
                    self._add_name(text, (rxcui,), "rxnorm_ingredients.csv")

    def _load_products(self) -> None:
        with open(SHIPPED / "rxnorm_products.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                parts = tuple(r.strip() for r in row["ingredient_rxcuis"].split(";") if r.strip())
                unknown = [p for p in parts if p not in self.ingredients]
                if unknown or not parts:
                    raise RxNormDataError(f"product {row['name']!r} lists unknown ingredients {unknown}")
                rxcui = row["product_rxcui"].strip()
                if rxcui:
                    self.products[rxcui] = parts
                synonyms = [s.strip() for s in row["synonyms"].split(";") if s.strip()]
                for text in synonyms:
                    self._add_name(text, parts, "rxnorm_products.csv")

    def _load_interactions(self) -> None:
        with open(SHIPPED / "ddi_pairs.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                a, b = row["rxcui_a"].strip(), row["rxcui_b"].strip()
                if a not in self.ingredients or b not in self.ingredients or a == b:
                    raise RxNormDataError(f"DDI pair {a}-{b} does not name two known ingredients")
                severity = row["severity"].strip()
                if severity not in SEVERITIES:
                    raise RxNormDataError(f"DDI pair {a}-{b}: unknown severity {severity!r}")
                self.interactions[frozenset((a, b))] = Interaction(
                    a, b, severity, row["effect"].strip(), row["source"].strip()
                )

    def match_text(self, text: str) -> list[str]:
        """Ingredient RxCUIs named in free text, longest names first, in order of appearance."""
        words = _words(text)
        found: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self.longest_name, len(words) - i), 0, -1):
                hit = self.names.get(words[i:i + size])
                if hit:
                    for rxcui in hit:
                        if rxcui not in found:
                            found.append(rxcui)
                    i += size
                    break
            else:
                i += 1
        return found


_tables: _Tables | None = None
_lock = threading.Lock()


def _data() -> _Tables:
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                _tables = _Tables()
    return _tables


def ingredients() -> dict[str, Ingredient]:
    """Every ingredient the product knows, by RxCUI (a fresh dict; the values are immutable)."""
    return dict(_data().ingredients)


def ingredients_for(code: str | None, display: str | None = None) -> list[str]:
    """All ingredient RxCUIs of a medication coding: ingredient or listed product RxCUI,
    else names, synonyms and brand names found in `code` or `display` text."""
    tables = _data()
    text_code = (code or "").strip()
    if text_code in tables.ingredients:
        return [text_code]
    if text_code in tables.products:
        return list(tables.products[text_code])
    if text_code and not text_code.isdigit():
        found = tables.match_text(text_code)  # some feeds put the drug name in `code`
        if found:
            return found
    if display:
        return tables.match_text(display)
    return []


def ingredient_for(code: str | None, display: str | None = None) -> str | None:
    """The ingredient RxCUI of a medication coding (the first one for combination products)."""
    found = ingredients_for(code, display)
    return found[0] if found else None


def ddi_pairs(severities: Iterable[str] | None = None) -> frozenset[frozenset[str]]:
    """Interacting ingredient pairs, optionally only those of the given severities."""
    wanted = set(severities) if severities is not None else None
    if wanted is not None and not wanted <= set(SEVERITIES):
        raise ValueError(f"severities must be among {SEVERITIES}")
    return frozenset(
        pair for pair, info in _data().interactions.items() if wanted is None or info.severity in wanted
    )


def interaction(a: str | None, b: str | None) -> Interaction | None:
    """Severity, effect and source of the interaction between two ingredients, if listed."""
    if not a or not b:
        return None
    return _data().interactions.get(frozenset((a.strip(), b.strip())))


def interacts(a: str | None, b: str | None) -> bool:
    return interaction(a, b) is not None


def ddi_matrix(rxcuis: list[str], severities: Iterable[str] | None = None) -> np.ndarray:
    """Symmetric 0/1 float32 matrix over `rxcuis` (in that order): 1 where a pair interacts.

    Entries not in the ingredient list (e.g. a vocabulary's out-of-vocabulary slot) get
    all-zero rows.
    """
    pairs = ddi_pairs(severities)
    index: dict[str, list[int]] = {}
    for i, rxcui in enumerate(rxcuis):
        index.setdefault(str(rxcui), []).append(i)
    matrix = np.zeros((len(rxcuis), len(rxcuis)), dtype=np.float32)
    for pair in pairs:
        a, b = tuple(pair)
        for i in index.get(a, ()):
            for j in index.get(b, ()):
                matrix[i, j] = matrix[j, i] = 1.0
    return matrix
