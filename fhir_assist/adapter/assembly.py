"""Assembling visits once every resource has been read: episodes, what attaches where, finished Visits.

An export's files come in no particular order, so the builder first reduces each
resource to a record (`records`), then `VisitAssembly.build()` joins encounters into
episodes, attaches Conditions, procedures, medications and notes (by encounter, by
Encounter.diagnosis, else by date) and finishes each Visit.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from itertools import chain
from operator import itemgetter

from .episodes import group_episodes
from .problem_list import active_codes
from .records import ItemRecord, MedicationRef
from .visits import Code, PatientTimeline, Visit, coding_of

UTC = timezone.utc
_DATE_ONLY_SLACK = timedelta(hours=14)     # a bare date may be in any time zone
_OPEN_ENCOUNTER_SPAN = timedelta(days=30)  # how far an in-progress encounter without end reaches
_NO_SLACK = timedelta(0)
_MISSING = object()
_MIDNIGHT = time(0)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_FIRST_TWO = itemgetter(0, 1)          # (rank, order) and (when, order): a C key, no lambda


def _visit_order(parts) -> tuple:
    return parts.lo is None, parts.visit.start or _EARLIEST, parts.visit.encounter_id
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
            members = episode.members
            primary = members[0]
            patient = primary.patient or next((m.patient for m in members if m.patient), None)
            if patient is None:
                report.skip("Encounter without a patient", len(members))
                continue
            ids = [m.id for m in members]
            if len(members) == 1:
                outside = primary.part_of if primary.part_of and primary.part_of != primary.id else None
            else:
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
                if m.reason_codes:
                    for code in m.reason_codes:
                        if code not in visit.reason_codes:
                            visit.reason_codes.append(code)
                if m.reason_unknown:
                    parts.unknown.extend(m.reason_unknown)
                parts_of[m.id] = parts
            by_patient[patient].append(parts)
        return parts_of, by_patient

    def build(self) -> list[PatientTimeline]:
        report = self.report
        parts_of, by_patient = self._visit_parts()
        for visits in by_patient.values():
            if len(visits) > 1:
                visits.sort(key=_visit_order)
        self._attach_conditions(parts_of, by_patient)
        self._attach_items(parts_of, by_patient)

        timelines = []
        problems_of = self.problems
        for pid in sorted(set(self.patients) | set(by_patient)):
            if pid not in self.patients:
                report.note("patients without a Patient resource")
            sex, birth = self.patients.get(pid, (None, None))
            visits = [self._finish(parts, birth) for parts in by_patient.get(pid, ())]
            problems = list(problems_of[pid].values()) if pid in problems_of else []
            if problems:
                for visit in visits:
                    visit.problem_list = active_codes(problems, visit.start)
            # (visits are already in this order: by_patient was sorted on the same keys)
            if not visits:
                report.note("patients without encounters")
            timelines.append(PatientTimeline(patient_id=pid, sex=sex, birth_date=birth, visits=visits,
                                             problems=list(problems)))
        return timelines

    def _attach_items(self, parts_of, by_patient) -> None:
        """Procedures, medications and notes onto the visits of their encounters, else by date."""
        for (rtype, _), item in self.items.items():
            encounters = item.encounters
            parts = parts_of.get(encounters[0]) if len(encounters) == 1 else None
            if parts is not None:         # the usual case: one encounter, in the data
                targets = (parts,)
            else:
                targets = self._targets(item, parts_of, by_patient)
                if not targets:
                    continue
            for parts in targets:
                if rtype == "MedicationRequest":
                    if type(item.codes) is tuple and item.codes:    # ingredients, as usual
                        parts.medications.update(item.codes)
                    else:
                        self._add_medication(parts, item)
                elif rtype == "Procedure":
                    parts.procedures.append((item.order, item.codes))
                    if item.unknown:
                        parts.unknown.extend(item.unknown)
                else:
                    when = item.dates[0][0] if item.dates else None
                    parts.notes.append((when or _LATEST, item.order, item.codes))

    def _citations(self, parts_of) -> dict:
        """Condition id → [(visit parts, rank)] of the visits whose Encounter.diagnosis cites it;
        codes of Conditions named by Encounter.reasonReference go to the visit's reasons."""
        report, conditions = self.report, self.conditions
        cited: dict[str, list[tuple[_VisitParts, int | None]]] = {}
        missing = 0
        for eid, enc in self.encounters.items():
            parts = parts_of.get(eid)
            if parts is None:
                continue
            for cid, rank in enc.diagnoses:
                if cid in conditions:
                    citing = cited.get(cid)
                    if citing is None:
                        cited[cid] = [(parts, rank)]
                    else:
                        citing.append((parts, rank))
                else:
                    missing += 1
            for cid in enc.reason_refs:
                condition = conditions.get(cid)
                if condition is not None:
                    for code in condition.codes:
                        if code not in parts.visit.reason_codes:
                            parts.visit.reason_codes.append(code)
        if missing:
            report.skip("Encounter.diagnosis citing a Condition not in the data", missing)
        return cited

    def _attach_conditions(self, parts_of, by_patient) -> None:
        report = self.report
        self._problem_ids = {cid for entries in self.problems.values() for cid in entries}
        cited = self._citations(parts_of)
        linked = 0          # noted once at the end: the same count, without a call per Condition
        for cid, item in self.conditions.items():
            citing = cited.get(cid)
            if citing is not None and len(citing) == 1 and not item.encounters:
                # the usual case: no encounter of its own, cited by one visit
                parts, rank = citing[0]
                linked += 1
                parts.dx.append((rank if rank is not None else 1 << 30, item.order, item.codes))
                if item.unknown:
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
                linked += 1
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
        if linked:
            report.note("Conditions linked through Encounter.diagnosis", linked)

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
        for when in item.dates:          # (moment, date_only, …): the readers may keep more
            moment, slack = when[0], _DATE_ONLY_SLACK if when[1] else _NO_SLACK
            inside = [p for p in visits
                      if p.lo is not None and p.lo - slack <= moment <= p.hi + slack]
            if inside:
                # Several visits that day (or overlapping stays): the one whose own times
                # contain the moment, else the latest that had started by then.
                best = max(inside, key=lambda p: (p.visit.start <= moment <= (p.visit.end or p.visit.start),
                                                  p.visit.start <= moment, p.visit.start))
                self.report.note(f"{item.kind} attached to a visit by date")
                return best
        for when in item.dates:
            moment, best = when[0], None
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
        # Each code once, first occurrence first (dict keys: Code hashes as it compares, and
        # an equal key met later keeps the first one's object, display included).
        dx = parts.dx
        if dx:
            if len(dx) > 1:
                dx.sort(key=_FIRST_TWO)
            visit.diagnoses = list(dict.fromkeys(chain.from_iterable([codes for _, _, codes in dx])))
        procedures = parts.procedures
        if procedures:
            if len(procedures) > 1:
                procedures.sort(key=_FIRST_TWO)
            visit.procedures = list(dict.fromkeys(chain.from_iterable([codes for _, codes in procedures])))
        visit.coding = coding = coding_of(visit.diagnoses, visit.reason_codes)
        if coding == "z-codes-only" or coding == "reason-only":
            self.report.note(f"visits kept with {coding.replace('-', ' ')}")
        visit.medications = sorted(parts.medications)
        visit.unmapped_medications = parts.unmapped
        notes = parts.notes
        if notes:
            if len(notes) > 1:
                notes.sort(key=_FIRST_TWO)
            visit.notes = [text for _, _, text in notes]
        if parts.unknown:
            visit.unknown_codes = list(dict.fromkeys(parts.unknown))
        if birth is not None and visit.start is not None:
            days = (visit.start.date() - birth).days
            if days >= 0:
                visit.age = round(days / 365.25, 2)
            else:
                self.report.note("visits before the birth date (age left empty)")
        return visit
