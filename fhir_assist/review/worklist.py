"""The coder worklist: encounters that have suggested Conditions, newest first.

An encounter is *to review* while any suggested Condition is still provisional and
*done* once every suggestion was confirmed or refuted.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fhir_assist.fhir.datetimes import parse_fhir_datetime
from fhir_assist.fhir.references import typed_reference_id

from . import fhir_marks
from .conditions import ConditionView, parse_condition

log = logging.getLogger(__name__)

STATUSES = {"todo": "To review", "done": "Done", "all": "All"}
ID_CHUNK = 40          # ids per `_id=a,b,…` search: keeps URLs short for any server


@dataclass
class EncounterSummary:
    id: str
    patient: str | None = None
    patient_name: str | None = None
    birth_date: str | None = None
    gender: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    encounter_class: str | None = None
    type_text: str | None = None


@dataclass
class WorklistEntry:
    encounter: EncounterSummary
    suggestions: list[ConditionView] = field(default_factory=list)

    @property
    def open_count(self) -> int:
        return sum(1 for c in self.suggestions if c.is_open)

    @property
    def accepted_count(self) -> int:
        return sum(1 for c in self.suggestions if c.status == "confirmed")

    @property
    def refuted_count(self) -> int:
        return sum(1 for c in self.suggestions if c.status == "refuted")

    @property
    def status(self) -> str:
        return "todo" if self.open_count else "done"

    @property
    def model_version(self) -> str | None:
        return next((c.model_version for c in self.suggestions if c.model_version), None)

    @property
    def sort_key(self) -> datetime:
        when = self.encounter.end or self.encounter.start or max(
            (c.recorded_at for c in self.suggestions if c.recorded_at), default=None)
        if when is None:
            return datetime.min.replace(tzinfo=timezone.utc)
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def human_name(patient: dict) -> str | None:
    for name in patient.get("name") or []:
        if name.get("text"):
            return name["text"]
        parts = [" ".join(name.get("given") or []), name.get("family") or ""]
        text = " ".join(p for p in parts if p).strip()
        if text:
            return text
    return None


def summarize_encounter(resource: dict) -> EncounterSummary:
    period = resource.get("period") or {}
    klass = resource.get("class") or {}
    types = resource.get("type") or []
    type_text = None
    if types:
        type_text = types[0].get("text") or next(
            (c.get("display") for c in types[0].get("coding") or [] if c.get("display")), None)
    return EncounterSummary(
        id=resource.get("id") or "",
        patient=typed_reference_id(resource.get("subject"), "Patient"),
        start=parse_fhir_datetime(period.get("start"), keep_offset=True),
        end=parse_fhir_datetime(period.get("end"), keep_offset=True),
        encounter_class=klass.get("display") or klass.get("code"),
        type_text=type_text,
    )


class EncounterDirectory:
    """Encounter and patient headers, read in batches and cached (they rarely change)."""

    def __init__(self, max_items: int = 20_000):
        self._cache: OrderedDict[str, EncounterSummary] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_items

    def summaries(self, fhir, encounter_ids: list[str]) -> dict[str, EncounterSummary]:
        with self._lock:
            found = {i: self._cache[i] for i in encounter_ids if i in self._cache}
        missing = [i for i in encounter_ids if i not in found]
        fresh: dict[str, EncounterSummary] = {}
        for chunk in _chunks(missing, ID_CHUNK):
            for resource in fhir.search("Encounter", {"_id": ",".join(chunk), "_count": str(len(chunk))}):
                if resource.get("resourceType") == "Encounter" and resource.get("id"):
                    fresh[resource["id"]] = summarize_encounter(resource)
        patients = sorted({s.patient for s in fresh.values() if s.patient})
        people: dict[str, dict] = {}
        for chunk in _chunks(patients, ID_CHUNK):
            for resource in fhir.search("Patient", {"_id": ",".join(chunk), "_count": str(len(chunk))}):
                if resource.get("resourceType") == "Patient" and resource.get("id"):
                    people[resource["id"]] = resource
        for summary in fresh.values():
            person = people.get(summary.patient or "")
            if person:
                summary.patient_name = human_name(person)
                summary.birth_date = person.get("birthDate")
                summary.gender = person.get("gender")
        with self._lock:
            for key, value in fresh.items():
                self._cache[key] = value
                self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return {**found, **fresh}

    def forget(self, encounter_id: str) -> None:
        with self._lock:
            self._cache.pop(encounter_id, None)


def _chunks(items: list[str], size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def build_worklist(fhir, directory: EncounterDirectory, *, status: str = "todo",
                   max_conditions: int = 5000) -> list[WorklistEntry]:
    """Entries for `status` ("todo" | "done" | "all"), newest encounter first."""
    by_encounter: dict[str, list[ConditionView]] = {}
    resources = fhir.search("Condition", fhir_marks.suggestion_search(max_conditions))
    for resource in resources[:max_conditions]:
        view = parse_condition(resource)
        if view.suggested and view.encounter:
            by_encounter.setdefault(view.encounter, []).append(view)
    if len(resources) >= max_conditions:
        log.warning("worklist read the first %d suggested Conditions only", max_conditions)
    entries = []
    summaries = directory.summaries(fhir, sorted(by_encounter))
    for encounter_id, suggestions in by_encounter.items():
        summary = summaries.get(encounter_id) or EncounterSummary(
            id=encounter_id, patient=suggestions[0].patient)
        entry = WorklistEntry(summary, sorted(suggestions, key=lambda c: (c.rank or 10**6, c.code or "")))
        if status == "all" or entry.status == status:
            entries.append(entry)
    entries.sort(key=lambda e: (e.sort_key, e.encounter.id), reverse=True)
    return entries
