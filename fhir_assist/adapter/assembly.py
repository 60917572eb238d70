"""Assembling visits once every resource has been read: episodes, what attaches where, finished Visits.

An export's files come in no particular order, so the builder first reduces each
resource to a record (`records`), then `VisitAssembly.build()` joins encounters into
episodes, attaches Conditions, procedures, medications and notes (by encounter, by
Encounter.diagnosis, else by date) and finishes each Visit.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone

from .episodes import group_episodes
from .problem_list import active_codes
from .records import ItemRecord, MedicationRef
from .visits import Code, PatientTimeline, Visit, coding_of

UTC = timezone.utc
_DATE_ONLY_SLACK = timedelta(hours=14)     # a bare date may be in any time zone
_OPEN_ENCOUNTER_SPAN = timedelta(days=30)  # how far an in-progress encounter without end reaches
_MISSING = object()
_MIDNIGHT = time(0)
_DAY_LESS_1US = timedelta(days=1) - timedelta(microseconds=1)


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
        # (combine: the same midnight as replace(hour=0, …), without its keyword-argument cost)
        self.lo = datetime.combine(start.date(), _MIDNIGHT, start.tzinfo) if start else None
        self.hi = datetime.combine(end.date(), _MIDNIGHT, end.tzinfo) + _DAY_LESS_1US if end else None
        if open_ended and self.hi is not None:
            # An encounter still in progress: a stay may run for weeks, but a status
            # left stale for years must not swallow everything dated after it.
            self.hi = max(self.hi, start + _OPEN_ENCOUNTER_SPAN)



class VisitAssembly:
    """The assembling half of `timeline.TimelineBuilder` (its stores: patients, encounters,
    conditions, problems, items, medications; its report, mapper and windows)."""

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
                          encounter_class=primary.cls, service=primary.service, part_of=outside,
                          linked_to=episode.linked_to,
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
            citing = cited.get(cid)
            if citing is not None and len(citing) == 1 and not item.encounters:
                # the usual case: no encounter of its own, cited by one visit
                parts, rank = citing[0]
                report.note("Conditions linked through Encounter.diagnosis")
                parts.dx.append((rank if rank is not None else 1 << 30, item.order, item.codes))
                parts.unknown.extend(item.unknown)
                continue
            targets: dict[int, tuple[_VisitParts, int | None]] = {}
            if item.encounters:
                for parts in self._by_encounter(item, parts_of):
                    targets[id(parts)] = (parts, None)
            if citing:
                for parts, rank in citing:
                    previous = targets.get(id(parts))
                    if previous is None or previous[1] is None or (rank is not None and rank < previous[1]):
                        targets[id(parts)] = (parts, rank)
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

    def _by_encounter(self, item: ItemRecord, parts_of) -> list[_VisitParts]:
        found = []
        for eid in item.encounters:
            parts = parts_of.get(eid)
            if parts is None:
                self.report.note(f"{item.kind} referencing an Encounter not in the data")
            elif parts not in found:
                found.append(parts)
        return found

    def _targets(self, item: ItemRecord, parts_of, by_patient) -> list[_VisitParts]:
        found = self._by_encounter(item, parts_of)
        if found:
            return found
        parts = self._by_date(item, by_patient)
        if parts is None:
            self.report.skip(f"{item.kind} not attached to a visit")
            return []
        return [parts]

    def _by_date(self, item: ItemRecord, by_patient) -> _VisitParts | None:
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

    def _add_medication(self, parts: _VisitParts, item: ItemRecord) -> None:
        rxcui, unmapped = item.codes, item.unknown
        if isinstance(rxcui, MedicationRef):
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
        # Each code once, first occurrence first (a set for the test: Code hashes as it compares).
        _extend_unique(visit.diagnoses, (codes for _, _, codes in sorted(parts.dx, key=lambda t: (t[0], t[1]))))
        _extend_unique(visit.procedures, (codes for _, codes in sorted(parts.procedures, key=lambda t: t[0])))
        visit.coding = coding_of(visit.diagnoses, visit.reason_codes)
        if visit.coding in ("z-codes-only", "reason-only"):
            self.report.note(f"visits kept with {visit.coding.replace('-', ' ')}")
        visit.medications = sorted(parts.medications)
        visit.unmapped_medications = parts.unmapped
        visit.notes = [text for _, _, text in sorted(parts.notes, key=lambda t: (t[0], t[1]))]
        _extend_unique(visit.unknown_codes, (parts.unknown,))
        if birth is not None and visit.start is not None:
            days = (visit.start.date() - birth).days
            if days >= 0:
                visit.age = round(days / 365.25, 2)
            else:
                self.report.note("visits before the birth date (age left empty)")
        return visit


def _extend_unique(out: list, groups) -> None:
    """Append the codes of `groups` (iterables of codes) not already in `out`, in order."""
    seen = set(out)
    for codes in groups:
        for code in codes:
            if code not in seen:
                seen.add(code)
                out.append(code)
