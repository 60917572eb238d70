"""FHIR resources → PatientTimelines of ordered Visits (one per top-level Encounter)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from fhir_assist.fhir.datetimes import parse_fhir_date, read_fhir_datetime
from fhir_assist.fhir.medications import medication_source
from fhir_assist.fhir.references import reference_id

from ..own_resources import is_unreviewed_suggestion
from .assembly import VisitAssembly
from .codes import CodeMapper
from .episodes import DEFAULT_EPISODE_GAP
from .gc_pause import no_cyclic_gc as _no_cyclic_gc
from .notes import attachment_text
from .problem_list import is_problem_list_item, problem_entry
from .records import EncounterRecord, ItemRecord, MedicationRef, service_name
from .visits import Code, PatientTimeline

__all__ = ["Code", "Cohort", "PatientTimeline", "TimelineBuilder", "build_timelines", "load_cohort"]


# ---------------------------------------------------------------------------
# Building timelines from FHIR resources
# ---------------------------------------------------------------------------
# Real exports rarely look like our generator's: Conditions often carry no
# `encounter` (they are cited from Encounter.diagnosis, or only dated), stays are
# split into sub-encounters chained by `partOf`, medications arrive as references
# to Medication resources, times carry offsets. The builder below reads resources
# one at a time into small records (so a million-resource export fits in a few GB)
# and assembles visits once everything has been seen, since an export's files come
# in no particular order.

#: how long after an encounter ends a dated resource without an encounter may still be attached to it
DEFAULT_ATTACH_WINDOW = timedelta(days=3)
_OPEN_STATUS = frozenset({"in-progress", "arrived", "triaged", "onleave"})

_GENDER_ALIASES = {"male": "male", "m": "male", "female": "female", "f": "female",
                   "other": "other", "o": "other", "unknown": "unknown", "u": "unknown",
                   "unk": "unknown"}
_SKIP_ENCOUNTER_STATUS = frozenset({"cancelled", "entered-in-error", "planned"})
_SKIP_CONDITION_VERIFICATION = frozenset({"entered-in-error", "refuted"})
_SKIP_PROCEDURE_STATUS = frozenset({"entered-in-error", "not-done"})
_SKIP_MEDICATION_STATUS = frozenset({"cancelled", "entered-in-error"})


class TimelineBuilder(VisitAssembly):
    """Feed resources with `add()` (any order), then `build()` the timelines."""

    def __init__(self, report=None, *, attach_window: timedelta = DEFAULT_ATTACH_WINDOW,
                 episode_gap: timedelta = DEFAULT_EPISODE_GAP):
        from .report import IngestReport
        self.report = report if report is not None else IngestReport()
        self.mapper = CodeMapper(self.report)
        self.attach_window = attach_window
        self.episode_gap = episode_gap
        self.patients: dict[str, tuple[str | None, date | None]] = {}
        self.encounters: dict[str, EncounterRecord] = {}
        self.conditions: dict[str, ItemRecord] = {}
        self.problems: dict[str | None, dict] = defaultdict(dict)   # patient → {Condition id: problem entry}
        self.items: dict[tuple[str, str], ItemRecord] = {}      # (type, id) → procedures, meds, notes
        self.medications: dict[str, Any] = {}              # Medication id → code concept
        self._resolved_medications: dict[str, tuple] = {}
        self._order = 0
        # Functions, not bound methods: a builder holding its own methods is a reference cycle,
        # and its records (a million on a large export) would then wait for the cyclic collector.
        cls = type(self)
        self._handlers = {
            "Patient": cls._patient, "Encounter": cls._encounter, "Condition": cls._condition,
            "Procedure": cls._procedure, "MedicationRequest": cls._medication_request,
            "Medication": cls._medication, "DocumentReference": cls._document,
        }

    # -- reading ---------------------------------------------------------------
    def add(self, resource: dict) -> None:
        if not isinstance(resource, dict):
            self.report.skip("not a JSON object")
            return
        rtype = resource.get("resourceType")
        handler = self._handlers.get(rtype)
        if handler is None:
            self.report.note(f"{rtype} resources not used by timelines")
            return
        self._order += 1
        try:
            handler(self, resource)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # Only reachable with validate="none": a field of an unexpected shape.
            self.report.skip(f"{rtype} of an unexpected shape")
            self.report.note(f"{rtype} read errors: {type(exc).__name__}")

    def add_all(self, resources: Iterable[dict]) -> "TimelineBuilder":
        for resource in resources:
            self.add(resource)
        return self

    def _date(self, value: Any) -> tuple[datetime, bool] | None:
        moment, date_only, assumed = read_fhir_datetime(value)
        if value is not None and moment is None:
            self.report.note("unreadable dates ignored")
        if assumed:
            self.report.note("times without a time zone read as UTC")
        return (moment, date_only) if moment is not None else None

    def _key(self, resource: dict, rtype: str) -> str:
        rid = resource.get("id")
        if isinstance(rid, str) and rid:
            return rid
        self.report.note(f"{rtype} without id")
        return f"#anonymous-{self._order}"

    def _patient(self, resource: dict) -> None:
        rid = resource.get("id")
        if not isinstance(rid, str) or not rid:
            self.report.skip("Patient without id")
            return
        gender = _GENDER_ALIASES.get(str(resource.get("gender") or "").strip().lower())
        if resource.get("gender") is not None and gender is None:
            self.report.note("Patient.gender values not understood")
        elif gender is not None and gender != resource.get("gender"):
            self.report.note("Patient.gender values normalised (e.g. 'M' → male)")
        birth = resource.get("birthDate")
        if rid in self.patients:
            self.report.note("duplicate resources (same type and id), last one kept")
        self.patients[rid] = (gender, parse_fhir_date(birth))

    def _encounter(self, resource: dict) -> None:
        rid = resource.get("id")
        if not isinstance(rid, str) or not rid:
            self.report.skip("Encounter without id")
            return
        status = resource.get("status")
        if status in _SKIP_ENCOUNTER_STATUS:
            self.report.skip(f"Encounter with status {status}")
            return
        enc = EncounterRecord()
        enc.id = rid
        enc.patient = reference_id(resource.get("subject"), "Patient")
        period = resource.get("period") or {}
        start = self._date(period.get("start"))
        end = self._date(period.get("end"))
        enc.start = start[0] if start else None
        enc.end = end[0] if end else None
        enc.open = enc.end is None and status in _OPEN_STATUS
        cls = resource.get("class")
        if isinstance(cls, list):      # R5 shape (list of CodeableConcept) seen in the wild
            cls = (cls[0].get("coding") or [{}])[0] if cls and isinstance(cls[0], dict) else None
        enc.cls = cls.get("code") if isinstance(cls, dict) and isinstance(cls.get("code"), str) else None
        enc.part_of = reference_id(resource.get("partOf"), "Encounter")
        enc.service = _service(resource.get("serviceType"))
        enc.diagnoses = []
        for i, dx in enumerate(resource.get("diagnosis") or []):
            if not isinstance(dx, dict):
                continue
            cid = reference_id(dx.get("condition"), "Condition")
            if cid is None:
                self.report.skip("Encounter.diagnosis without a Condition reference")
                continue
            rank = dx.get("rank")
            enc.diagnoses.append((cid, rank if isinstance(rank, int) and not isinstance(rank, bool) else None))
        enc.reason_codes, enc.reason_unknown = [], []
        for concept in resource.get("reasonCode") or []:
            codes, unknown = self.mapper.diagnoses(concept)
            enc.reason_codes.extend(c for c in codes if c not in enc.reason_codes)
            enc.reason_unknown.extend(unknown)
        enc.reason_refs = [r for r in (reference_id(ref, "Condition")
                                       for ref in resource.get("reasonReference") or []) if r]
        if rid in self.encounters:
            self.report.note("duplicate resources (same type and id), last one kept")
        self.encounters[rid] = enc

    def _condition(self, resource: dict) -> None:
        if is_unreviewed_suggestion(resource):    # our own guess: never read back as a diagnosis
            self.report.skip("provisional Condition suggested by this service")
            return
        verification = resource.get("verificationStatus") or {}
        for coding in verification.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code") in _SKIP_CONDITION_VERIFICATION:
                self.report.skip(f"Condition {coding['code']}")
                return
        codes, unknown = self.mapper.diagnoses(resource.get("code"))
        if not codes and not unknown:
            self.report.skip("Condition without a code")
            return
        onset = resource.get("onsetDateTime")
        if onset is None and isinstance(resource.get("onsetPeriod"), dict):
            onset = resource["onsetPeriod"].get("start")
        dates = [d for d in (self._date(resource.get("recordedDate")), self._date(onset)) if d]
        enc = reference_id(resource.get("encounter"), "Encounter")
        key, patient = self._key(resource, "Condition"), reference_id(resource.get("subject"), "Patient")
        if key in self.conditions:
            self.report.note("duplicate resources (same type and id), last one kept")
        self.conditions[key] = ItemRecord("Condition", patient, [enc] if enc else [], dates, codes, unknown, self._order)
        if is_problem_list_item(resource):
            self.problems[patient][key] = problem_entry(resource, key, codes, self._date, self.report)

    def _procedure(self, resource: dict) -> None:
        status = resource.get("status")
        if status in _SKIP_PROCEDURE_STATUS:
            self.report.skip(f"Procedure with status {status}")
            return
        codes, unknown = self.mapper.procedures(resource.get("code"))
        if not codes and not unknown:
            self.report.skip("Procedure without a code")
            return
        when = resource.get("performedDateTime")
        if when is None and isinstance(resource.get("performedPeriod"), dict):
            when = resource["performedPeriod"].get("start")
        dates = [d for d in (self._date(when),) if d]
        enc = reference_id(resource.get("encounter"), "Encounter")
        self._put("Procedure", resource, ItemRecord("Procedure", reference_id(resource.get("subject"), "Patient"),
                                               [enc] if enc else [], dates, codes, unknown, self._order))

    def _put(self, rtype: str, resource: dict, item: ItemRecord) -> None:
        key = (rtype, self._key(resource, rtype))
        if key in self.items:
            self.report.note("duplicate resources (same type and id), last one kept")
        self.items[key] = item

    def _medication(self, resource: dict) -> None:
        rid = resource.get("id")
        if isinstance(rid, str) and rid:
            self.medications[rid] = resource.get("code")

    def _medication_request(self, resource: dict) -> None:
        status = resource.get("status")
        if status in _SKIP_MEDICATION_STATUS:
            self.report.skip(f"MedicationRequest with status {status}")
            return
        source = medication_source(resource)
        if source.problem:
            self.report.skip(source.problem)
            return
        if source.concept is not None:
            rxcui, unmapped = self.mapper.medication(source.concept)
        else:
            rxcui, unmapped = MedicationRef(source.medication_id), None   # resolved in build(): the Medication may come later
        enc = reference_id(resource.get("encounter"), "Encounter")
        dates = [d for d in (self._date(resource.get("authoredOn")),) if d]
        self._put("MedicationRequest", resource,
                  ItemRecord("MedicationRequest", reference_id(resource.get("subject"), "Patient"),
                        [enc] if enc else [], dates, rxcui, unmapped, self._order))

    def _document(self, resource: dict) -> None:
        if resource.get("status") == "entered-in-error" or resource.get("docStatus") == "entered-in-error":
            self.report.skip("DocumentReference entered-in-error")
            return
        texts = []
        for content in resource.get("content") or []:
            attachment = content.get("attachment") if isinstance(content, dict) else None
            if not isinstance(attachment, dict):
                continue
            text = attachment_text(attachment, self.report)
            if text:
                texts.append(text)
        if not texts:
            return
        context = resource.get("context") or {}
        encounters = [e for e in (reference_id(r, "Encounter") for r in context.get("encounter") or []) if e]
        when = resource.get("date")
        if when is None and isinstance(context.get("period"), dict):
            when = context["period"].get("start")
        dates = [d for d in (self._date(when),) if d]
        self._put("DocumentReference", resource,
                  ItemRecord("DocumentReference", reference_id(resource.get("subject"), "Patient"),
                        encounters, dates, "\n".join(texts), None, self._order))



def build_timelines(resources: Iterable[dict], report=None, *, attach_window: timedelta = DEFAULT_ATTACH_WINDOW,
                    episode_gap: timedelta = DEFAULT_EPISODE_GAP) -> list[PatientTimeline]:
    """One PatientTimeline per patient (sorted by id), visits ordered by start.

    Conditions reach a visit through their `encounter`, through every Encounter.diagnosis
    citing them (a chronic problem re-cited at three visits lands in all three), or
    else by date. A sub-encounter (partOf) joins its parent's visit when their periods overlap
    or touch within `episode_gap`; otherwise it is a visit of its own, linked (`Visit.linked_to`).
    What is skipped or not understood is counted in `report`.
    """
    with _no_cyclic_gc():
        return TimelineBuilder(report, attach_window=attach_window, episode_gap=episode_gap) \
            .add_all(resources).build()


@dataclass
class Cohort:
    timelines: list[PatientTimeline]
    report: Any                       # fhir_assist.adapter.report.IngestReport
    source: str | None = None

    def __len__(self) -> int:
        return len(self.timelines)

    def __iter__(self):
        return iter(self.timelines)

    def patient(self, patient_id: str) -> PatientTimeline | None:
        return next((t for t in self.timelines if t.patient_id == patient_id), None)

    @property
    def visit_count(self) -> int:
        return sum(len(t.visits) for t in self.timelines)


def load_cohort(path, *, validate: str = "fast", progress: bool = True, full_sample: int = 0,
                attach_window: timedelta = DEFAULT_ATTACH_WINDOW,
                episode_gap: timedelta = DEFAULT_EPISODE_GAP) -> Cohort:
    """Read a Bulk Data export directory, NDJSON/Bundle file(s) into patient timelines.

    Never stops on messy data: see `cohort.report.summary()` for what was skipped.
    """
    from .compact_reader import CompactReader
    from .files import iter_resources
    from .report import IngestReport
    report = IngestReport()

    def read_and_build() -> list[PatientTimeline]:
        builder = TimelineBuilder(report, attach_window=attach_window, episode_gap=episode_gap)
        # "fast" NDJSON lines go through the compact reader (several times faster, same result);
        # other modes and what it declines are read as dicts.
        consume = CompactReader(builder) if validate == "fast" and not full_sample else None
        builder.add_all(iter_resources(path, validate=validate, report=report, progress=progress,
                                       full_sample=full_sample, consume=consume))
        if consume is not None:
            consume.finish()
        return builder.build()

    with _no_cyclic_gc():
        # The builder's records are freed as read_and_build returns, still inside the pause,
        # so the first collection after it only walks the timelines.
        timelines = read_and_build()
    return Cohort(timelines, report, str(path))


def _service(concept) -> str | None:
    """Encounter.serviceType (a CodeableConcept; odd shapes count as absent)."""
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding")
    pairs = [(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)] \
        if isinstance(codings, list) else []
    return service_name(pairs, concept.get("text"))
