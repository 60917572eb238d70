"""Feedback events → training labels for the ICD ranker (`train icd-ranker --feedback FILE`).

One label per (source, patient, encounter, system, code): the latest decision wins, so
a coder who accepted and then undid a code, or rejected and then accepted it, leaves
exactly the final answer (an undo with no later decision leaves none). Events that
carry no code label (medication cards, audit-only events) are skipped and counted.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

LABEL_FIELDS = ("patient", "encounter", "system", "code", "label", "source", "user", "at", "model_version")


@dataclass
class ExportReport:
    events: int = 0
    labels: int = 0
    positives: int = 0
    negatives: int = 0
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = (f"{self.labels} labels ({self.positives} positive, {self.negatives} negative) "
                f"from {self.events} feedback events")
        if self.skipped:
            text += "; skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return text


def labels_from_events(events: Iterable[dict], report: ExportReport | None = None) -> list[dict]:
    """Events oldest first (as `Store.list_feedback` returns them) → labels, oldest decision first."""
    report = report if report is not None else ExportReport()
    latest: dict[tuple, dict] = {}
    for event in events:
        report.events += 1
        if not isinstance(event, dict):
            report.skipped["not an object"] += 1
            continue
        if not all(event.get(k) for k in ("patient", "encounter", "system", "code")):
            report.skipped["without a code label"] += 1
            continue
        key = (event.get("source") or "unknown", str(event["patient"]), str(event["encounter"]),
               str(event["system"]), str(event["code"]))
        label = event.get("label")
        if label is None:
            if event.get("action") == "reopen":
                latest.pop(key, None)    # the decision was withdrawn
            else:
                report.skipped["without a code label"] += 1
            continue
        if label not in (0, 1, True, False):
            report.skipped["with a label other than 0/1"] += 1
            continue
        latest.pop(key, None)            # re-insert: keeps the file in decision order
        latest[key] = _label(event, int(label))
    out = list(latest.values())
    report.labels = len(out)
    report.positives = sum(1 for r in out if r["label"] == 1)
    report.negatives = report.labels - report.positives
    return out


def _label(event: dict, label: int) -> dict:
    row = {
        "patient": str(event["patient"]),
        "encounter": str(event["encounter"]),
        "system": str(event["system"]),
        "code": str(event["code"]),
        "label": label,
        "source": event.get("source") or "unknown",
        "user": event.get("user"),
        "at": event.get("at") or event.get("recorded_at"),
        "model_version": event.get("model_version"),
    }
    if event.get("reason"):
        row["reason"] = str(event["reason"])
    return row


def to_jsonl(labels: Iterable[dict]) -> Iterator[str]:
    for row in labels:
        yield json.dumps(row, ensure_ascii=False) + "\n"
