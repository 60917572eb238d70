"""Batch outputs: suggestions NDJSON (one line per coded encounter, by patient id), write-back
transaction Bundles (one per encounter with codes to write, NDJSON), and a summary of what was
read, coded and skipped."""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

from fhir_assist.adapter.report import IngestReport

from .patient import PatientResult

SUGGESTIONS = "suggestions.ndjson"
BUNDLES = "write-back.ndjson"
SUMMARY = "summary.json"
#: the skip reasons a summary always names, even at zero (what a reader looks for first)
ALWAYS_REPORTED = ("invalid JSON", "invalid resource", "resource without patient",
                   "encounter without inputs", "encounter still in progress")


class BatchTotals:
    """Counts over every patient, merged as results arrive."""

    def __init__(self, read_report: IngestReport | None = None) -> None:
        self.report = IngestReport()
        if read_report is not None:
            self.report.merge(read_report)
        self.counts: Counter = Counter()

    def add(self, result: PatientResult) -> None:
        self.report.merge(result.report)
        self.counts.update(result.counts)

    def summary(self, **run: object) -> dict:
        report = self.report.to_dict()
        skipped = {reason: 0 for reason in ALWAYS_REPORTED}
        skipped.update(report["skipped"])
        seconds = float(run.get("seconds") or 0.0)
        encounters = self.counts.get("encounters", 0)
        return {
            **run,
            "patients": self.counts.get("patients", 0),
            "patients_without_visits": self.counts.get("patients without visits", 0),
            "encounters": encounters,
            "encounters_per_s": round(encounters / seconds, 2) if seconds > 0 else None,
            "conditions_in_bundles": self.counts.get("conditions in bundles", 0),
            "files": report["files"],
            "resources": report["resources"],
            "resources_total": report["resources_total"],
            "skipped": skipped,
            "problem_count": report["problem_count"],
            "problems": report["problems"][:20],
            "unknown_codes": report["unknown_codes"],
            "events": report["events"],
        }


class OutputWriter:
    """Writes results (already in patient-id order) into `out_dir`, atomically per file."""

    def __init__(self, out_dir: str | os.PathLike, bundles: bool) -> None:
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self._names = [SUGGESTIONS] + ([BUNDLES] if bundles else [])
        self._files = {name: open(self.out / f".{name}.partial", "wb") for name in self._names}

    def write(self, results: Iterable[PatientResult], totals: BatchTotals) -> None:
        suggestions = self._files[SUGGESTIONS]
        bundles = self._files.get(BUNDLES)
        for result in results:
            totals.add(result)
            suggestions.writelines(result.lines)
            if bundles is not None:
                bundles.writelines(result.bundles)

    def finish(self, summary: dict) -> None:
        for name, handle in self._files.items():
            handle.close()
            os.replace(self.out / f".{name}.partial", self.out / name)
        (self.out / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    def abandon(self) -> None:
        for name, handle in self._files.items():
            handle.close()
            (self.out / f".{name}.partial").unlink(missing_ok=True)


def summary_text(summary: dict) -> str:
    """A few lines for stderr."""
    rate = summary.get("encounters_per_s")
    lines = [f"coded {summary['encounters']} encounter(s) of {summary['patients']} patient(s) "
             f"in {summary.get('seconds', 0):.1f} s" + (f" ({rate} encounters/s)" if rate else "")
             + f" with the {summary.get('engine')} engine",
             f"read {summary['resources_total']} resource(s) from {summary['files']} file(s)"]
    skipped = {k: v for k, v in summary["skipped"].items() if v}
    lines.append("skipped: " + (", ".join(f"{k} {v}" for k, v in skipped.items()) if skipped else "nothing"))
    if summary.get("problem_count"):
        lines.append(f"{summary['problem_count']} input problem(s); the first: "
                     + "; ".join(_problem(p) for p in summary["problems"][:3]))
    return "\n".join(lines)


def _problem(problem: dict) -> str:
    where = problem.get("source") or "?"
    return f"{where}: {problem.get('message')}"
