"""Compile the clinical tables against `mappings` into fast sampling structures.

Every ICD-10-CM code is checked with `mappings.icd`, every procedure code with
`mappings.procedures`, every ingredient name is resolved to its RxCUI with
`mappings.rxnorm`. Whatever the mappings don't know is left out of the cohort
and listed in `Knowledge.dropped`, so the generator only ever writes codes the
rest of the product can read.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import random
from dataclasses import dataclass, field

from . import acute_problems, clinical

log = logging.getLogger(__name__)

ICD9_CUTOVER = "2015-10-01"   # US switch from ICD-9-CM to ICD-10-CM (by discharge date)
TAIL_GROUP_SIZE = 800          # rare codes kept per chapter group (enough for a long tail, bounded)


class Weighted:
    """Items with weights; `pick(rng)` draws one in O(log n)."""

    __slots__ = ("items", "cumulative", "total")

    def __init__(self, pairs):
        pairs = [(item, float(w)) for item, w in pairs if w > 0]
        self.items = [item for item, _ in pairs]
        self.cumulative = []
        total = 0.0
        for _, w in pairs:
            total += w
            self.cumulative.append(total)
        self.total = total

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def pick(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)
                          if self.total else 0]


def parse_weights(text: str) -> list[tuple[str, float]]:
    """ "A:2 B:0.5" → [("A", 2.0), ("B", 0.5)]."""
    out = []
    for token in text.split():
        code, _, weight = token.rpartition(":")
        out.append((code, float(weight)))
    return out


def parse_drug_weights(text: str) -> list[tuple[str, float]]:
    """Drug lists hold names with spaces ("insulin glargine:8 heparin:3")."""
    out, pending = [], []
    for token in text.split():
        if ":" in token:
            name, _, weight = token.rpartition(":")
            pending.append(name)
            out.append((" ".join(pending), float(weight)))
            pending = []
        else:
            pending.append(token)
    return out


def zipf_weights(n: int, exponent: float = 1.1, offset: float = 2.0) -> list[float]:
    return [1.0 / (rank + offset) ** exponent for rank in range(n)]


def _stable_order(codes) -> list[str]:
    """A fixed pseudo-random order (so the Zipf head is not alphabetical, yet reproducible)."""
    return sorted(codes, key=lambda c: hashlib.sha1(c.encode()).hexdigest())


@dataclass
class CompiledChronic:
    spec: clinical.Chronic
    codes: Weighted
    tail: Weighted
    co_codes: list                  # [(code, probability)]
    meds: list                      # [(class, probability)]
    terms: list


@dataclass
class CompiledAcute:
    spec: acute_problems.Acute
    codes: Weighted
    tail: Weighted
    co_codes: list
    complications: list             # [(acute key, probability)]
    meds: list
    procedures: list                # [((pcs, icd9), probability)]
    replaces: dict
    terms: list
    settings: frozenset


@dataclass
class CancerSite:
    key: str
    codes: Weighted
    sex: str | None
    meds: list
    metastases: list
    terms: list


@dataclass
class Knowledge:
    chronic: dict
    chronic_order: list
    acute: dict
    cancer_sites: list
    drug_classes: dict              # class → Weighted of RxCUIs
    drug_names: dict                # RxCUI → display name
    ddi: frozenset
    common_secondary: Weighted
    background_secondary: Weighted  # status / history codes that stay with a patient
    tail_pool: Weighted
    med_status_codes: dict          # class → [(code, probability)]
    routine_inpatient: list
    routine_other: list
    descriptions: dict              # ICD-10-CM code → description (for notes)
    dialysis: tuple                 # (ICD-10-PCS, ICD-9-CM) for hemodialysis, either may be None
    procedure_names: dict           # ICD-10-PCS or ICD-9-CM procedure code → description
    billable_sorted: list = field(default_factory=list)   # all billable ICD-10-CM codes, sorted
    billable: frozenset = frozenset()                     # the same, for membership tests
    dropped: list = field(default_factory=list)   # (kind, value, why)
    _icd9: dict = field(default_factory=dict)

    def interacts(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.ddi

    def icd9_for(self, code10: str) -> str | None:
        """The ICD-9-CM code for an ICD-10-CM code via the GEMs.

        Codes added to ICD-10-CM after the last GEM (2018) have no entry; they take the
        mapping of their closest mapped relative: the parent, else a sibling under the
        same parent (unspecified ".9"-style siblings first)."""
        if code10 in self._icd9:
            return self._icd9[code10]
        found = self._gem_target(code10)
        prefix = code10
        while found is None and len(prefix) > 3:
            prefix = prefix[:-1].rstrip(".")
            found = self._gem_target(prefix)
            if found is None:
                siblings = [c for c in self._billable_under(prefix) if c != code10]
                siblings.sort(key=lambda c: (not c.endswith("9"), c))
                for sibling in siblings[:12]:
                    found = self._gem_target(sibling)
                    if found is not None:
                        break
        self._icd9[code10] = found
        return found

    def _gem_target(self, code10: str) -> str | None:
        from mappings import gem, icd
        h9 = icd.icd9cm()
        targets = [t for t in (gem.icd10_to_icd9(code10) or []) if h9.is_valid(t)]
        billable = [t for t in targets if h9.is_billable(t)]
        return (billable or targets or [None])[0]

    def _billable_under(self, prefix: str) -> list[str]:
        codes = self.billable_sorted
        i = bisect.bisect_left(codes, prefix)
        out = []
        while i < len(codes) and codes[i].startswith(prefix):
            out.append(codes[i])
            i += 1
        return out


def _check_codes(pairs, valid: set, hierarchy, dropped, where: str, ordered: list):
    out = []
    for code, weight in pairs:
        ok = code in valid
        if not ok:
            norm = hierarchy.normalize(code)
            if norm and hierarchy.is_billable(norm):
                code, ok = norm, True
            elif norm and hierarchy.is_valid(norm):
                # A code split into children by a later ICD-10-CM release: its first billable child.
                i = bisect.bisect_left(ordered, norm + ("" if "." in norm else "."))
                if i < len(ordered) and ordered[i].startswith(norm):
                    log.debug("synthetic cohort uses %s for non-billable %s (%s)", ordered[i], code, where)
                    code, ok = ordered[i], True
        if ok:
            out.append((code, weight))
        else:
            dropped.append(("icd10cm", code, f"not a billable ICD-10-CM code ({where})"))
    return out


def _terms(text: str) -> list[str]:
    return [t.strip() for t in text.split("|") if t.strip()]


@functools.lru_cache(maxsize=1)
def load() -> Knowledge:
    """Compile the tables once per process."""
    from mappings import rxnorm

    tables = _TableCompiler()
    tables.compile_drug_classes()
    chronic = tables.compile_chronic()
    acute = tables.compile_acute()
    dialysis = tables.procedure_pair("5A1D70Z", "39.95")
    sites = tables.compile_cancer_sites()

    secondary = tables.codes(clinical.COMMON_SECONDARY, "secondary")
    background = [(c, w) for c, w in secondary if c.startswith(("Z8", "Z9"))]
    per_stay = [(c, w) for c, w in secondary if not c.startswith(("Z8", "Z9"))]

    used = {c for c, _ in secondary}
    for comp in list(chronic.values()) + list(acute.values()):
        used.update(comp.codes.items)
    tail_pool = tables.rare_tail_pool(used)

    status = {cls: tables.codes(text, f"status:{cls}") for cls, text in clinical.MED_STATUS_CODES.items()}

    ddi = frozenset(pair for pair in rxnorm.ddi_pairs() if len(pair) == 2)
    descriptions = tables.descriptions(set(tail_pool.items) | used, chronic, acute, sites)
    tables.log_dropped()

    return Knowledge(
        chronic=chronic, chronic_order=[s.key for s in clinical.CHRONIC], acute=acute, cancer_sites=sites,
        drug_classes=tables.drug_classes, drug_names=tables.drug_names, ddi=ddi,
        common_secondary=Weighted(per_stay), background_secondary=Weighted(background), tail_pool=tail_pool,
        med_status_codes=status,
        routine_inpatient=tables.meds(clinical.ROUTINE_INPATIENT),
        routine_other=tables.meds(clinical.ROUTINE_OTHER),
        billable_sorted=tables.ordered, billable=frozenset(tables.billable), descriptions=descriptions,
        dialysis=dialysis, procedure_names=tables.procedure_names, dropped=tables.dropped)


class _TableCompiler:
    """Checks the clinical tables against `mappings`, one table at a time, collecting what it
    leaves out in `dropped` (in the order the tables are compiled)."""

    def __init__(self):
        from mappings import icd

        self.dropped: list = []
        self.h10 = icd.icd10cm()
        self.billable = set(self.h10.billing_codes())
        self.adult = sorted(c for c in self.billable if _adult_code(c, self.h10))
        self.ordered = sorted(self.billable)
        self.drug_classes: dict = {}
        self.drug_names: dict = {}
        self.procedure_names: dict = {}

    def codes(self, text, where):
        return _check_codes(parse_weights(text), self.billable, self.h10, self.dropped, where, self.ordered)

    def tail(self, prefixes: str, exclude) -> Weighted:
        if not prefixes:
            return Weighted([])
        heads = tuple(p for p in prefixes.split())
        pool = [c for c in self.adult if c.startswith(heads) and c not in exclude]
        ordered = _stable_order(pool)
        return Weighted(zip(ordered, zipf_weights(len(ordered), 1.2, 3.0)))

    def meds(self, pairs):
        return [(cls, p) for cls, p in pairs if cls in self.drug_classes]

    def compile_drug_classes(self) -> None:
        """Drug classes: names → RxCUIs known to mappings."""
        from mappings import rxnorm

        known = rxnorm.ingredients()
        for cls, text in clinical.DRUG_CLASSES.items():
            pairs = []
            for name, weight in parse_drug_weights(text):
                rxcui = rxnorm.ingredient_for(name)
                if rxcui is None:
                    self.dropped.append(("rxnorm", name, f"ingredient unknown to mappings.rxnorm (class {cls})"))
                    continue
                pairs.append((rxcui, weight))
                ingredient = known.get(rxcui) if known else None
                self.drug_names[rxcui] = ingredient.name if ingredient is not None else name
            if pairs:
                self.drug_classes[cls] = Weighted(pairs)

    def compile_chronic(self) -> dict:
        chronic = {}
        for spec in clinical.CHRONIC:
            head = self.codes(spec.codes, spec.key)
            chronic[spec.key] = CompiledChronic(
                spec=spec, codes=Weighted(head), tail=self.tail(spec.tail, {c for c, _ in head}),
                co_codes=self.codes(spec.co_codes, spec.key), meds=self.meds(spec.meds), terms=_terms(spec.terms))
        return chronic

    def procedure_pair(self, pcs, icd9):
        """(ICD-10-PCS, ICD-9-CM) with each code mappings don't know replaced by None."""
        from mappings import codesystems, procedures

        text10 = procedures.procedure_description(codesystems.ICD10PCS, pcs)
        text9 = procedures.procedure_description(codesystems.ICD9CM_PROC, icd9)
        ok10, ok9 = text10 is not None, text9 is not None
        if ok10:
            self.procedure_names[pcs] = text10
        if ok9:
            self.procedure_names[icd9] = text9
        if not ok10:
            self.dropped.append(("icd10pcs", pcs, "unknown to mappings.procedures"))
        if not ok9:
            self.dropped.append(("icd9proc", icd9, "unknown to mappings.procedures"))
        return (pcs if ok10 else None, icd9 if ok9 else None)

    def compile_acute(self) -> dict:
        acute = {spec.key: self._compile_acute_problem(spec) for spec in acute_problems.ACUTE}
        for a in acute.values():
            for k, _ in a.complications:
                if k not in acute:
                    raise ValueError(f"acute problem {a.spec.key!r} names unknown complication {k!r}")
        return acute

    def _compile_acute_problem(self, spec) -> CompiledAcute:
        head = self.codes(spec.codes, spec.key)
        replaces = {}
        for old, new in spec.replaces.items():
            checked = self.codes(f"{old}:1 {new}:1", spec.key)
            if len(checked) == 2:
                replaces[checked[0][0]] = checked[1][0]
        procs = []
        for pcs, icd9, p in spec.procedures:
            pair = self.procedure_pair(pcs, icd9)
            if pair != (None, None):
                procs.append((pair, p))
        return CompiledAcute(
            spec=spec, codes=Weighted(head), tail=self.tail(spec.tail, {c for c, _ in head}),
            co_codes=self.codes(spec.co_codes, spec.key),
            complications=[(k, p) for k, p in parse_weights(spec.complications)],
            meds=self.meds(spec.meds), procedures=procs, replaces=replaces, terms=_terms(spec.terms),
            settings=frozenset(spec.settings.split()))

    def compile_cancer_sites(self) -> list:
        sites = []
        for key, text, sex, site_meds, mets, terms in clinical.CANCER_SITES:
            head = self.codes(text, f"cancer:{key}")
            if head:
                sites.append(CancerSite(key, Weighted(head), sex, self.meds(site_meds), self.codes(mets, key),
                                        _terms(terms)))
        return sites

    def rare_tail_pool(self, used: set) -> Weighted:
        """The rare tail: plausible adult inpatient codes, in a fixed shuffled order with Zipf weights."""
        tail_pairs = []
        for prefix, share in parse_weights(clinical.TAIL_PREFIXES):
            group = _stable_order(c for c in self.adult if c.startswith(prefix) and c not in used)[:TAIL_GROUP_SIZE]
            weights = zipf_weights(len(group), 1.05, 4.0)
            scale = share / (sum(weights) or 1.0)
            tail_pairs.extend((c, w * scale) for c, w in zip(group, weights))
        return Weighted(tail_pairs)

    def descriptions(self, all_codes: set, chronic: dict, acute: dict, sites: list) -> dict:
        """ICD-10-CM code → description for every code the cohort can write (notes quote them)."""
        for comp in list(chronic.values()) + list(acute.values()):
            all_codes.update(comp.tail.items)
            all_codes.update(c for c, _ in comp.co_codes)
            if isinstance(comp, CompiledAcute):
                all_codes.update(comp.replaces.values())
        for site in sites:
            all_codes.update(site.codes.items)
            all_codes.update(c for c, _ in site.metastases)
        return {c: (self.h10.description(c) or c) for c in all_codes}

    def log_dropped(self) -> None:
        for kind, value, why in self.dropped:
            log.debug("synthetic cohort leaves out %s %s: %s", kind, value, why)
        if self.dropped:
            log.debug("synthetic cohort: %d table entries unknown to mappings were left out", len(self.dropped))


def _adult_code(code: str, hierarchy) -> bool:
    """Codes an adult hospital stay plausibly carries (no pregnancy, newborn, sequela or follow-up encounters)."""
    if len(code.replace(".", "")) == 7 and code[-1] != "A":
        return False
    text = (hierarchy.description(code) or "").lower()
    return not any(word in text for word in clinical.TAIL_EXCLUDE_WORDS)
