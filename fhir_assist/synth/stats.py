"""Calibration statistics of a cohort, next to the published MIMIC-III figures.

Pure functions over `PatientTimeline` objects, so they describe any cohort the
adapter can read — ours, a Bulk Data export from a hospital, or Bundles.

Definitions (as in the papers in shared/papers):
- visits_per_patient: mean number of visits of patients with at least one visit;
- dx_jaccard_consecutive / med_jaccard_consecutive: mean Jaccard coefficient of
  the diagnosis-code (medication-ingredient) sets of consecutive visits of the
  same patient, over all such pairs where at least one set is non-empty
  (MICRON, Fig. 1: < 0.2 for diagnoses, ≈ 0.5 for medications);
- billing_codes_per_stay: mean number of distinct billable ICD codes per visit;
- codes_all_levels_per_stay: the visit's codes rolled up the ICD hierarchy
  (`mappings.icd` levels: chapter, block, 3-character, 4-character, billing),
  counted as distinct nodes per level and summed over the levels — the label
  count a multi-level coder faces (CAC paper, Table 2: 9.13 billing codes and
  39.54 across all levels per stay);
- unknown_codes: diagnosis/procedure codes outside the known vocabularies plus
  medications that could not be mapped to an RxNorm ingredient;
- encounters / visits: Encounters read, and the visits (episodes) they make: an
  admission joined to the ED visit it continues is one visit of two encounters;
  visits_by_class (class code → visits), open_visits (still in progress),
  reason_only_visits (known only by Encounter.reasonCode), visits_with_procedures;
- procedures_mapped / medications_mapped: procedure codes and medications kept as
  model tokens (ICD or any other system's code; an ingredient or the drug's RxCUI);
- unknown_codes_by_system: the unknown codes above by code system;
- dx_jaccard_coded_pairs / med_jaccard_coded_pairs: the consecutive-visit Jaccards
  over pairs whose two visits both have codes (an empty visit beside a coded one
  says nothing about how alike visits are).

`level_profile`, `medication_profile` and `code_frequency_profile` add detail
for the printed table (per-level counts, DDI rates, the long tail of codes);
`cohort_stats` alone defines the machine-readable figures (`--json`).
"""
from __future__ import annotations

import functools
import math
from collections import Counter

KEYS = ("patients", "visits_per_patient", "dx_jaccard_consecutive", "med_jaccard_consecutive",
        "billing_codes_per_stay", "codes_all_levels_per_stay", "distinct_dx_codes", "distinct_medications",
        "unknown_codes", "encounters", "visits", "open_visits", "reason_only_visits", "visits_with_procedures",
        "procedures_mapped", "medications_mapped", "dx_jaccard_coded_pairs", "med_jaccard_coded_pairs")
# Keys whose value is an object (printed as one line each).
BREAKDOWNS = ("visits_by_class", "unknown_codes_by_system")

# Published MIMIC-III figures the synthetic cohort is calibrated to.
TARGETS = {
    "visits_per_patient": 2.4,
    "dx_jaccard_consecutive": 0.2,
    "med_jaccard_consecutive": 0.5,
    "billing_codes_per_stay": 9.13,
    "codes_all_levels_per_stay": 39.54,
    "unknown_codes": 0,
}
TARGET_NOTES = {
    "visits_per_patient": "MIMIC-III multi-visit patients (long tail)",
    "dx_jaccard_consecutive": "MICRON Fig. 1 (mean below 0.2)",
    "med_jaccard_consecutive": "MICRON Fig. 1 (mean around 0.5)",
    "billing_codes_per_stay": "CAC Table 2 (SD 5.83)",
    "codes_all_levels_per_stay": "CAC Table 2 (SD 21.95)",
}
LABELS = {
    "patients": "patients",
    "visits_per_patient": "visits per patient",
    "dx_jaccard_consecutive": "diagnosis Jaccard, consecutive visits",
    "med_jaccard_consecutive": "medication Jaccard, consecutive visits",
    "billing_codes_per_stay": "billing codes per stay",
    "codes_all_levels_per_stay": "codes across all ICD levels per stay",
    "distinct_dx_codes": "distinct diagnosis codes",
    "distinct_medications": "distinct medications (ingredients)",
    "unknown_codes": "unknown codes",
    "encounters": "encounters",
    "visits": "visits (episodes)",
    "open_visits": "visits still in progress",
    "reason_only_visits": "visits known only by their reason",
    "visits_with_procedures": "visits with procedures",
    "procedures_mapped": "procedure codes kept as tokens",
    "medications_mapped": "medications kept as tokens",
    "dx_jaccard_coded_pairs": "diagnosis Jaccard, consecutive coded visits",
    "med_jaccard_coded_pairs": "medication Jaccard, consecutive coded visits",
    "visits_by_class": "visits by class",
    "unknown_codes_by_system": "unknown codes by system",
}
LEVELS = ("chapter", "block", "3char", "4char", "billing")
# MIMIC-III (ICD-9-CM) codes per stay by level, CAC paper Table 2 (its "4 digits" and "5 digits" levels
# both end in billing codes; our ICD-10-CM roll-up has one billing level instead).
LEVEL_TARGETS = {"chapter": 5.77, "block": 8.10, "3char": 10.18, "4char": 10.48, "billing": 9.13}


@functools.lru_cache(maxsize=None)
def _hierarchy(system: str):
    from mappings import icd
    return icd.hierarchy_for(system)


@functools.lru_cache(maxsize=200_000)
def _code_facts(system: str, code: str):
    """(known, billable, frozenset of (level, node) it rolls up to) for one diagnosis code."""
    hierarchy = _hierarchy(system)
    if hierarchy is None or not hierarchy.is_valid(code):
        return False, False, frozenset()
    nodes = frozenset((system, level, node) for level, node in hierarchy.rollup(code).items())
    return True, hierarchy.is_billable(code), nodes


def _jaccard(a: set, b: set) -> float | None:
    union = a | b
    if not union:
        return None
    return len(a & b) / len(union)


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def cohort_stats(timelines) -> dict:
    """The calibration figures of a cohort (keys: `KEYS`). A mean with nothing to average
    (no visits, no consecutive visits) is None rather than a misleading 0."""
    visit_counts, dx_pairs, med_pairs, billing, levels = [], [], [], [], []
    coded_dx_pairs, coded_med_pairs = [], []
    dx_codes: set = set()
    medications: set = set()
    unknown = 0
    unknown_by_system: Counter = Counter()
    for timeline in timelines:
        if timeline.visits:
            visit_counts.append(len(timeline.visits))
        previous = None
        for visit in timeline.visits:
            dx, nodes, n_billing = set(), set(), 0
            for code in visit.diagnoses:
                known, billable, code_nodes = _code_facts(code.system, code.code)
                if not known:
                    unknown += 1
                    unknown_by_system[code.system] += 1
                    continue
                key = (code.system, code.code)
                if key in dx:
                    continue
                dx.add(key)
                n_billing += billable
                nodes |= code_nodes
            meds = set(visit.medications)
            not_mapped = list(getattr(visit, "unknown_codes", ()) or ()) + list(visit.unmapped_medications or ())
            unknown += len(not_mapped)
            unknown_by_system.update(code.system for code in not_mapped)
            billing.append(n_billing)
            levels.append(len(nodes))
            dx_codes |= dx
            medications |= meds
            if previous is not None:
                j = _jaccard(previous[0], dx)
                if j is not None:
                    dx_pairs.append(j)
                j = _jaccard(previous[1], meds)
                if j is not None:
                    med_pairs.append(j)
                if previous[0] and dx:
                    coded_dx_pairs.append(_jaccard(previous[0], dx))
                if previous[1] and meds:
                    coded_med_pairs.append(_jaccard(previous[1], meds))
            previous = (dx, meds)
    return {
        "patients": len(timelines),
        "visits_per_patient": _rounded(_mean(visit_counts)),
        "dx_jaccard_consecutive": _rounded(_mean(dx_pairs)),
        "med_jaccard_consecutive": _rounded(_mean(med_pairs)),
        "billing_codes_per_stay": _rounded(_mean(billing)),
        "codes_all_levels_per_stay": _rounded(_mean(levels)),
        "distinct_dx_codes": len(dx_codes),
        "distinct_medications": len(medications),
        "unknown_codes": unknown,
        **_episode_figures(timelines),
        "dx_jaccard_coded_pairs": _rounded(_mean(coded_dx_pairs)),
        "med_jaccard_coded_pairs": _rounded(_mean(coded_med_pairs)),
        "unknown_codes_by_system": dict(sorted(unknown_by_system.items())),
    }


def _episode_figures(timelines) -> dict:
    """Encounters and visits: how the export's Encounters became visits, and what they carry."""
    by_class: Counter = Counter()
    encounters = visits = open_visits = reason_only = with_procedures = procedures = medications = 0
    for timeline in timelines:
        for visit in timeline.visits:
            visits += 1
            encounters += len(getattr(visit, "encounter_ids", None) or ()) or 1
            by_class[visit.encounter_class or "(none)"] += 1
            open_visits += bool(getattr(visit, "open", False))
            reason_only += getattr(visit, "coding", "") == "reason-only"
            with_procedures += bool(visit.procedures)
            procedures += len(visit.procedures)
            medications += len(visit.medications)
    return {"encounters": encounters, "visits": visits, "visits_by_class": dict(by_class.most_common()),
            "open_visits": open_visits, "reason_only_visits": reason_only,
            "visits_with_procedures": with_procedures, "procedures_mapped": procedures,
            "medications_mapped": medications}


def level_profile(timelines) -> dict:
    """Mean number of distinct hierarchy nodes per stay at each ICD level."""
    totals = {level: 0 for level in LEVELS}
    stays = 0
    for timeline in timelines:
        for visit in timeline.visits:
            stays += 1
            nodes = set()
            for code in visit.diagnoses:
                nodes |= _code_facts(code.system, code.code)[2]
            for _, level, _ in nodes:
                if level in totals:
                    totals[level] += 1
    return {level: round(total / stays, 3) if stays else 0.0 for level, total in totals.items()}


def medication_profile(timelines) -> dict:
    """Medications per visit and drug-drug interactions (pairs listed by `mappings.rxnorm`):
    the share of a visit's medication pairs that interact (the DDI rate MICRON reports),
    and the share of visits with at least one interacting pair."""
    from mappings import rxnorm
    ddi = rxnorm.ddi_pairs()
    visits = pairs = interacting = visits_with = meds = 0
    for timeline in timelines:
        for visit in timeline.visits:
            drugs = sorted(set(visit.medications))
            visits += 1
            meds += len(drugs)
            found = 0
            for i, a in enumerate(drugs):
                for b in drugs[i + 1:]:
                    pairs += 1
                    if frozenset((a, b)) in ddi:
                        found += 1
            interacting += found
            visits_with += found > 0
    return {
        "medications_per_visit": round(meds / visits, 3) if visits else 0.0,
        "ddi_pair_rate": round(interacting / pairs, 4) if pairs else 0.0,
        "ddi_visit_share": round(visits_with / visits, 4) if visits else 0.0,
    }


def code_frequency_profile(timelines) -> dict:
    """Shape of the diagnosis-code frequency distribution: the rank-frequency slope
    (≈ 1 for a Zipf law), the share of occurrences taken by the top 1% of codes,
    and how many codes occur only once."""
    counts = Counter((c.system, c.code) for t in timelines for v in t.visits for c in v.diagnoses)
    if len(counts) < 3:
        return {"zipf_exponent": None, "top1pct_share": None, "singletons": len(counts)}
    freqs = sorted(counts.values(), reverse=True)
    # Least-squares slope of log(frequency) on log(rank) over codes seen at least twice.
    points = [(math.log(rank), math.log(f)) for rank, f in enumerate(freqs, 1) if f >= 2]
    slope = None
    if len(points) >= 3:
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        sxx = sum((x - mx) ** 2 for x, _ in points)
        sxy = sum((x - mx) * (y - my) for x, y in points)
        slope = -sxy / sxx if sxx else None
    top = max(1, len(freqs) // 100)
    return {
        "zipf_exponent": round(slope, 3) if slope is not None else None,
        "top1pct_share": round(sum(freqs[:top]) / sum(freqs), 4),
        "singletons": sum(1 for f in freqs if f == 1),
    }


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def format_table(stats: dict, profile: dict | None = None, title: str | None = None,
                 levels: dict | None = None, medications: dict | None = None) -> str:
    """A plain-text calibration table: measured figures beside the MIMIC-III targets."""
    rows = []
    for key in KEYS:
        rows.append((LABELS[key], _fmt(stats.get(key)), _fmt(TARGETS.get(key)), TARGET_NOTES.get(key, "")))
        if key == "codes_all_levels_per_stay":
            for level, value in (levels or {}).items():
                rows.append((f"  of which {level}", _fmt(value), _fmt(LEVEL_TARGETS.get(level)),
                             "CAC Table 2 (ICD-9-CM levels)"))
    for key in BREAKDOWNS:
        if stats.get(key):
            rows.append((LABELS[key], ", ".join(f"{k} {v}" for k, v in stats[key].items()), "—", ""))
    if medications:
        rows.append(("medications per visit", _fmt(medications.get("medications_per_visit")), "—", ""))
        rows.append(("interacting medication pairs (DDI rate)", _fmt(medications.get("ddi_pair_rate")), "—",
                     "pairs listed by mappings.rxnorm"))
        rows.append(("visits with an interacting pair", _fmt(medications.get("ddi_visit_share")), "—", ""))
    if profile:
        rows.append(("diagnosis codes: rank-frequency slope", _fmt(profile.get("zipf_exponent")), "—",
                     "log-log; a straight line = power law"))
        rows.append(("diagnosis codes: share of top 1%", _fmt(profile.get("top1pct_share")), "—", ""))
        rows.append(("diagnosis codes seen once", _fmt(profile.get("singletons")), "—", ""))
    header = ("statistic", "measured", "target", "source of target")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]:>{widths[2]}}  {header[3]}")
    lines.append("-" * (sum(widths) + 6))
    for label, measured, target, note in rows:
        lines.append(f"{label:<{widths[0]}}  {measured:>{widths[1]}}  {target:>{widths[2]}}  {note}".rstrip())
    return "\n".join(lines)
