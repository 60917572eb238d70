"""The one per-patient coding function: a patient's resources → one suggestions line per
visit, and the transaction Bundles that write the confident codes back.

Both engines call `PatientCoder.code` with the same inputs, and its output does not depend on
the order the resources arrive in (they are put in one canonical order first), so the local
and Spark engines write the same bytes.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Iterable

import orjson

from fhir_assist.adapter.report import IngestReport
from fhir_assist.adapter.timeline import build_timelines
from fhir_assist.fhir_server import build_suggested_condition, conditional_create_bundle

if TYPE_CHECKING:
    from fhir_assist.suggest.visit_codes import VisitCoder

IN_PROGRESS = "encounter still in progress"
NO_INPUTS = "encounter without inputs"
SCORE_DIGITS = 6


@dataclass
class PatientResult:
    """What coding one patient gave: output lines (bytes, newline-terminated), and counts."""
    patient_id: str
    lines: list[bytes] = field(default_factory=list)
    bundles: list[bytes] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)
    counts: Counter = field(default_factory=Counter)


class VisitData:
    """What `VisitCoder` reads of a hook call's data, for one visit of a batch."""

    def __init__(self, visit, timeline, report: IngestReport) -> None:
        self.visit = visit
        self.timeline = timeline
        self.report = report

    def unknown_codes(self) -> list[dict]:
        return [{"system": system, "code": code} for system, codes in self.report.unknown_code_examples.items()
                for code in codes if code]


class PatientCoder:
    """The coding models, list, cut and write-back rule one process codes patients with:
    `coder` is the `suggest.visit_codes.VisitCoder` the coding hook runs too."""

    def __init__(self, coder: VisitCoder, *, bundles: bool = False, recorded: datetime | None = None) -> None:
        self.coder = coder
        self.settings = coder.settings
        self.bundles = bundles
        self.recorded = recorded

    def code(self, patient_id: str, resources: Iterable[dict]) -> PatientResult:
        result = PatientResult(patient_id)
        ordered = canonical_order(resources)
        try:
            timelines = build_timelines(ordered, result.report)
        except Exception as exc:  # noqa: BLE001 - one patient's odd record must not stop the batch
            result.report.skip("patient whose timeline could not be built")
            result.report.note(f"timeline errors: {type(exc).__name__}")
            return result
        timeline = next((t for t in timelines if t.patient_id == patient_id), None)
        if timeline is None:
            result.counts["patients without visits"] += 1
            return result
        result.counts["patients"] += 1
        for visit in timeline.visits:
            self._code_visit(result, timeline, visit)
        return result

    def _code_visit(self, result: PatientResult, timeline, visit) -> None:
        if visit.open:
            result.report.skip(IN_PROGRESS)
            return
        data = VisitData(visit, timeline, result.report)
        run = self.coder.rank_codes(data)
        if not run.has_evidence and not visit.reason_codes:
            result.report.skip(NO_INPUTS)
            return
        result.counts["encounters"] += 1
        candidates = self.coder.candidates(run, visit)
        recommended = [m for m in candidates if m.recommended]
        result.lines.append(self._line(result.patient_id, visit, run, candidates, recommended))
        if self.bundles:
            # The service's write-back choice, with the evidence it checks thin visits by.
            self.coder.add_evidence(run, self.coder.codes_to_explain(data, run, recommended))
            chosen = self.coder.codes_to_write(data, run, recommended)
            if chosen:
                result.bundles.append(self._bundle(result.patient_id, visit, run, chosen))
                result.counts["conditions in bundles"] += len(chosen)

    def _line(self, patient_id: str, visit, run, candidates, recommended) -> bytes:
        # The recommended codes and more up to the card's length, within the depth the service ranks to.
        shown = candidates[: min(max(self.settings.top_codes, len(recommended)), max(50, self.settings.top_codes * 3))]
        line = {
            "patient": patient_id,
            "encounter": visit.encounter_id,
            "encounters": list(visit.encounter_ids or [visit.encounter_id]),
            "start": _iso(visit.start),
            "end": _iso(visit.end),
            "class": visit.encounter_class,
            "coding": visit.coding,
            "models": run.versions,
            "cutoff_k": run.cutoff_k,
            "target_recall": run.target_recall,
            "expected_recall": _round(run.expected_recall),
            "codes": [{"system": m.system, "code": m.code, "display": m.display, "rank": i,
                       "score": _round(m.score), "recommended": bool(m.recommended), "models": list(m.models)}
                      for i, m in enumerate(shown, 1)],
        }
        return orjson.dumps(line) + b"\n"

    def _bundle(self, patient_id: str, visit, run, chosen) -> bytes:
        version = "; ".join(run.versions)
        conditions = [build_suggested_condition(patient_id, visit.encounter_id, m, version, recorded=self.recorded,
                                                cutoff_k=run.cutoff_k, target_recall=run.target_recall)
                      for m in chosen]
        return orjson.dumps(conditional_create_bundle(conditions)) + b"\n"


def canonical_order(resources: Iterable[dict]) -> list[dict]:
    """Resources sorted by type and id (whole content where those repeat), so that how an
    engine gathered them does not change what is built from them."""
    items = list(resources)
    keys = [(str(r.get("resourceType")), str(r.get("id") or "")) for r in items]
    repeated = {k for k, n in Counter(keys).items() if n > 1}
    decorated = [(k, _content(r) if k in repeated else b"", i) for i, (k, r) in enumerate(zip(keys, items))]
    decorated.sort(key=lambda d: d[:2])
    return [items[d[2]] for d in decorated]


def _content(resource: dict) -> bytes:
    try:
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except TypeError:       # integers beyond 64 bits, which the standard parser accepts
        return json.dumps(resource, sort_keys=True).encode()


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _round(value: float | None) -> float | None:
    return round(float(value), SCORE_DIGITS) if value is not None else None
