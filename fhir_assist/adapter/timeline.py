"""FHIR resources → PatientTimelines of ordered Visits (one per top-level Encounter)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from fhir_assist.fhir.datetimes import parse_fhir_date, read_fhir_datetime
from fhir_assist.fhir.medications import medication_source
from fhir_assist.fhir.references import reference_id

from ..own_resources import is_unreviewed_suggestion
from .codes import CodeMapper
from .episodes import DEFAULT_EPISODE_GAP, group_episodes
from .gc_pause import no_cyclic_gc as _no_cyclic_gc
from .notes import attachment_text
from .problem_list import active_codes, is_problem_list_item, problem_entry
from .visits import Code, PatientTimeline, Visit, coding_of


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

UTC = timezone.utc
#: how long after an encounter ends a dated resource without an encounter may still be attached to it
DEFAULT_ATTACH_WINDOW = timedelta(days=3)
_DATE_ONLY_SLACK = timedelta(hours=14)     # a bare date may be in any time zone
_OPEN_ENCOUNTER_SPAN = timedelta(days=30)  # how far an in-progress encounter without end reaches
_OPEN_STATUS = frozenset({"in-progress", "arrived", "triaged", "onleave"})

_GENDER_ALIASES = {"male": "male", "m": "male", "female": "female", "f": "female",
                   "other": "other", "o": "other", "unknown": "unknown", "u": "unknown",
                   "unk": "unknown"}
_SKIP_ENCOUNTER_STATUS = frozenset({"cancelled", "entered-in-error", "planned"})
_SKIP_CONDITION_VERIFICATION = frozenset({"entered-in-error", "refuted"})
_SKIP_PROCEDURE_STATUS = frozenset({"entered-in-error", "not-done"})
_SKIP_MEDICATION_STATUS = frozenset({"cancelled", "entered-in-error"})


class _Encounter:
    __slots__ = ("id", "patient", "start", "end", "cls", "part_of", "diagnoses",
                 "reason_codes", "reason_unknown", "reason_refs", "open")


class _Item:
    """A Condition, Procedure, MedicationRequest or DocumentReference, reduced."""
    __slots__ = ("kind", "patient", "encounters", "dates", "codes", "unknown", "order")

    def __init__(self, kind, patient, encounters, dates, codes, unknown, order):
        self.kind = kind
        self.patient = patient
        self.encounters = encounters      # ids named by the resource itself
        self.dates = dates                # [(datetime, date_only)] in order of preference
        self.codes = codes                # list[Code] | RxCUIs | _MedicationRef | note text
        self.unknown = unknown            # list[Code] | Code | None
        self.order = order


class _MedicationRef:
    """A MedicationRequest's medicationReference to a Medication resource."""
    __slots__ = ("id",)

    def __init__(self, medication_id: str):
        self.id = medication_id


class _VisitParts:
    __slots__ = ("visit", "patient", "dx", "procedures", "medications", "unmapped",
                 "notes", "unknown", "lo", "hi")

    def __init__(self, visit: Visit, patient: str, open_ended: bool = False):
        self.visit = visit
        self.patient = patient
        self.dx: list[tuple] = []          # (rank, order, codes)
        self.procedures: list[tuple] = []
        self.medications: set[str] = set()
        self.unmapped: list[Code] = []
        self.notes: list[tuple] = []       # (when, order, text)
        self.unknown: list[Code] = []
        start = visit.start
        end = visit.end if visit.end is not None and start is not None and visit.end >= start else start
        # Day bounds: resources dated to the day of admission or discharge belong to the stay.
        self.lo = start.replace(hour=0, minute=0, second=0, microsecond=0) if start else None
        self.hi = (end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
                   - timedelta(microseconds=1)) if end else None
        if open_ended and self.hi is not None:
            # An encounter still in progress: a stay may run for weeks, but a status
            # left stale for years must not swallow everything dated after it.
            self.hi = max(self.hi, start + _OPEN_ENCOUNTER_SPAN)


class TimelineBuilder:
    """Feed resources with `add()` (any order), then `build()` the timelines."""

    def __init__(self, report=None, *, attach_window: timedelta = DEFAULT_ATTACH_WINDOW,
                 episode_gap: timedelta = DEFAULT_EPISODE_GAP):
        from .report import IngestReport
        self.report = report if report is not None else IngestReport()
        self.mapper = CodeMapper(self.report)
        self.attach_window = attach_window
        self.episode_gap = episode_gap
        self.patients: dict[str, tuple[str | None, date | None]] = {}
        self.encounters: dict[str, _Encounter] = {}
        self.conditions: dict[str, _Item] = {}
        self.problems: dict[str | None, dict] = defaultdict(dict)   # patient → {Condition id: problem entry}
        self.items: dict[tuple[str, str], _Item] = {}      # (type, id) → procedures, meds, notes
        self.medications: dict[str, Any] = {}              # Medication id → code concept
        self._resolved_medications: dict[str, tuple] = {}
        self._order = 0
        self._handlers = {
            "Patient": self._patient, "Encounter": self._encounter, "Condition": self._condition,
            "Procedure": self._procedure, "MedicationRequest": self._medication_request,
            "Medication": self._medication, "DocumentReference": self._document,
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
            handler(resource)
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
        enc = _Encounter()
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
        self.conditions[key] = _Item("Condition", patient, [enc] if enc else [], dates, codes, unknown, self._order)
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
        self._put("Procedure", resource, _Item("Procedure", reference_id(resource.get("subject"), "Patient"),
                                               [enc] if enc else [], dates, codes, unknown, self._order))

    def _put(self, rtype: str, resource: dict, item: _Item) -> None:
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
            rxcui, unmapped = _MedicationRef(source.medication_id), None   # resolved in build(): the Medication may come later
        enc = reference_id(resource.get("encounter"), "Encounter")
        dates = [d for d in (self._date(resource.get("authoredOn")),) if d]
        self._put("MedicationRequest", resource,
                  _Item("MedicationRequest", reference_id(resource.get("subject"), "Patient"),
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
                  _Item("DocumentReference", reference_id(resource.get("subject"), "Patient"),
                        encounters, dates, "\n".join(texts), None, self._order))

    # -- assembling ------------------------------------------------------------
    def _visit_parts(self) -> tuple[dict, dict]:
        """One _VisitParts per episode: encounter id (any member) → parts, and patient → [parts]."""
        report = self.report
        parts_of: dict[str, _VisitParts] = {}
        by_patient: dict[str, list[_VisitParts]] = defaultdict(list)
        for episode in group_episodes(self.encounters, report, self.episode_gap):
            members, primary = episode.members, episode.primary
            patient = primary.patient or next((m.patient for m in members if m.patient), None)
            if patient is None:
                report.skip("Encounter without a patient", len(members))
                continue
            ids = [m.id for m in members]
            outside = next((m.part_of for m in members if m.part_of and m.part_of not in ids), None)
            visit = Visit(encounter_id=primary.id, start=episode.start, end=episode.end,
                          encounter_class=primary.cls, part_of=outside, linked_to=episode.linked_to,
                          encounter_ids=ids, open=episode.open, merged_encounters=ids[1:])
            if episode.start is None:
                report.note("Encounters without period.start (ordered last)")
            if episode.open:
                report.note("visits still in progress (open, no end)")
            if len(members) > 1:
                report.note("sub-encounters joined into one visit (overlapping or touching partOf)", len(members) - 1)
            parts = _VisitParts(visit, patient, open_ended=episode.open)
            for m in members:
                for code in m.reason_codes:
                    if code not in visit.reason_codes:
                        visit.reason_codes.append(code)
                parts.unknown.extend(m.reason_unknown)
                parts_of[m.id] = parts
            by_patient[patient].append(parts)
        return parts_of, by_patient

    def build(self) -> list[PatientTimeline]:
        report = self.report
        parts_of, by_patient = self._visit_parts()
        for visits in by_patient.values():
            visits.sort(key=lambda p: (p.lo is None, p.visit.start or datetime.min.replace(tzinfo=UTC),
                                       p.visit.encounter_id))

        self._attach_conditions(parts_of, by_patient)
        for (rtype, _), item in self.items.items():
            targets = self._targets(item, parts_of, by_patient)
            if not targets:
                continue
            for parts in targets:
                if rtype == "Procedure":
                    parts.procedures.append((item.order, item.codes))
                    parts.unknown.extend(item.unknown)
                elif rtype == "MedicationRequest":
                    self._add_medication(parts, item)
                else:
                    when = item.dates[0][0] if item.dates else None
                    parts.notes.append((when or datetime.max.replace(tzinfo=UTC), item.order, item.codes))

        timelines = []
        for pid in sorted(set(self.patients) | set(by_patient)):
            if pid not in self.patients:
                report.note("patients without a Patient resource")
            sex, birth = self.patients.get(pid, (None, None))
            visits = [self._finish(parts, birth) for parts in by_patient.get(pid, [])]
            problems = list(self.problems.get(pid, {}).values())
            for visit in visits:
                visit.problem_list = active_codes(problems, visit.start)
            visits.sort(key=lambda v: (v.start is None, v.start or datetime.min.replace(tzinfo=UTC),
                                       v.encounter_id))
            if not visits:
                report.note("patients without encounters")
            timelines.append(PatientTimeline(patient_id=pid, sex=sex, birth_date=birth, visits=visits,
                                             problems=list(problems)))
        return timelines

    def _attach_conditions(self, parts_of, by_patient) -> None:
        report = self.report
        self._problem_ids = {cid for entries in self.problems.values() for cid in entries}
        cited: dict[str, list[tuple[_VisitParts, int | None]]] = defaultdict(list)
        for eid, enc in self.encounters.items():
            parts = parts_of.get(eid)
            if parts is None:
                continue
            for cid, rank in enc.diagnoses:
                if cid in self.conditions:
                    cited[cid].append((parts, rank))
                else:
                    report.skip("Encounter.diagnosis citing a Condition not in the data")
            for cid in enc.reason_refs:
                condition = self.conditions.get(cid)
                if condition is not None:
                    for code in condition.codes:
                        if code not in parts.visit.reason_codes:
                            parts.visit.reason_codes.append(code)
        for cid, item in self.conditions.items():
            targets: dict[int, tuple[_VisitParts, int | None]] = {}
            for parts in self._by_encounter(item, parts_of):
                targets[id(parts)] = (parts, None)
            for parts, rank in cited.get(cid, ()):
                previous = targets.get(id(parts))
                if previous is None or previous[1] is None or (rank is not None and rank < previous[1]):
                    targets[id(parts)] = (parts, rank)
            if cited.get(cid):
                report.note("Conditions linked through Encounter.diagnosis")
            if not targets and cid in self._problem_ids:
                report.note("problem-list Conditions cited by no visit (problem list only)")
                continue
            if not targets:
                parts = self._by_date(item, by_patient)
                if parts is None:
                    report.skip("Condition not attached to a visit")
                    continue
                targets[id(parts)] = (parts, None)
            for parts, rank in targets.values():
                parts.dx.append((rank if rank is not None else 1 << 30, item.order, item.codes))
                parts.unknown.extend(item.unknown)

    def _by_encounter(self, item: _Item, parts_of) -> list[_VisitParts]:
        found = []
        for eid in item.encounters:
            parts = parts_of.get(eid)
            if parts is None:
                self.report.note(f"{item.kind} referencing an Encounter not in the data")
            elif parts not in found:
                found.append(parts)
        return found

    def _targets(self, item: _Item, parts_of, by_patient) -> list[_VisitParts]:
        found = self._by_encounter(item, parts_of)
        if found:
            return found
        parts = self._by_date(item, by_patient)
        if parts is None:
            self.report.skip(f"{item.kind} not attached to a visit")
            return []
        return [parts]

    def _by_date(self, item: _Item, by_patient) -> _VisitParts | None:
        """The visit a dated resource without (a known) encounter belongs to.

        First a visit whose days contain one of its dates (the latest-starting one if
        stays overlap), else the nearest visit that ended at most `attach_window` before.
        """
        patient = item.patient
        if patient is None:
            # No subject: fall back to the patient of the encounter it names, if any.
            for eid in item.encounters:
                enc = self.encounters.get(eid)
                if enc is not None and enc.patient:
                    patient = enc.patient
                    break
        visits = by_patient.get(patient) if patient else None
        if not visits or not item.dates:
            return None
        for moment, date_only in item.dates:
            slack = _DATE_ONLY_SLACK if date_only else timedelta(0)
            inside = [p for p in visits
                      if p.lo is not None and p.lo - slack <= moment <= p.hi + slack]
            if inside:
                # Several visits that day (or overlapping stays): the one whose own times
                # contain the moment, else the latest that had started by then.
                best = max(inside, key=lambda p: (p.visit.start <= moment <= (p.visit.end or p.visit.start),
                                                  p.visit.start <= moment, p.visit.start))
                self.report.note(f"{item.kind} attached to a visit by date")
                return best
        for moment, date_only in item.dates:
            best = None
            for parts in visits:
                if parts.hi is not None and parts.hi < moment and moment - parts.hi <= self.attach_window:
                    if best is None or parts.hi > best.hi:
                        best = parts
            if best is not None:
                self.report.note(f"{item.kind} attached to the preceding visit by date")
                return best
        return None

    def _add_medication(self, parts: _VisitParts, item: _Item) -> None:
        rxcui, unmapped = item.codes, item.unknown
        if isinstance(rxcui, _MedicationRef):
            concept = self.medications.get(rxcui.id, _MISSING)
            if concept is _MISSING:
                self.report.skip("MedicationRequest referencing a Medication not in the data")
                return
            resolved = self._resolved_medications.get(rxcui.id)
            if resolved is None:
                resolved = self.mapper.medication(concept)
                self._resolved_medications[rxcui.id] = resolved
            elif not resolved[0] and resolved[1] is not None:
                # count an unmapped drug once per request, as for inline codes
                self.report.unknown_code(resolved[1].system, resolved[1].code or resolved[1].display)
            rxcui, unmapped = resolved
        if rxcui:
            parts.medications.update(rxcui)
        elif unmapped is not None and unmapped not in parts.unmapped:
            parts.unmapped.append(unmapped)

    def _finish(self, parts: _VisitParts, birth: date | None) -> Visit:
        visit = parts.visit
        for _, _, codes in sorted(parts.dx, key=lambda t: (t[0], t[1])):
            for code in codes:
                if code not in visit.diagnoses:
                    visit.diagnoses.append(code)
        for _, codes in sorted(parts.procedures, key=lambda t: t[0]):
            for code in codes:
                if code not in visit.procedures:
                    visit.procedures.append(code)
        visit.coding = coding_of(visit.diagnoses, visit.reason_codes)
        if visit.coding in ("z-codes-only", "reason-only"):
            self.report.note(f"visits kept with {visit.coding.replace('-', ' ')}")
        visit.medications = sorted(parts.medications)
        visit.unmapped_medications = parts.unmapped
        visit.notes = [text for _, _, text in sorted(parts.notes, key=lambda t: (t[0], t[1]))]
        for code in parts.unknown:
            if code not in visit.unknown_codes:
                visit.unknown_codes.append(code)
        if birth is not None and visit.start is not None:
            days = (visit.start.date() - birth).days
            if days >= 0:
                visit.age = round(days / 365.25, 2)
            else:
                self.report.note("visits before the birth date (age left empty)")
        return visit


_MISSING = object()


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
        builder = TimelineBuilder(report, attach_window=attach_window, episode_gap=episode_gap)
        return builder.add_all(resources).build()


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
    from .files import iter_resources
    from .report import IngestReport
    report = IngestReport()
    with _no_cyclic_gc():
        builder = TimelineBuilder(report, attach_window=attach_window, episode_gap=episode_gap)
        builder.add_all(iter_resources(path, validate=validate, report=report, progress=progress,
                                       full_sample=full_sample))
        timelines = builder.build()
    return Cohort(timelines, report, str(path))
