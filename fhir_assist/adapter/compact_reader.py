"""NDJSON lines straight into the timeline builder's records, through the compact decoded form.

The ordinary path parses a line into dicts (every field of the resource), validates
it ("fast") and hands it to `TimelineBuilder.add`. This one decodes the line into a
`compact` struct (unknown fields dropped, JSON types checked in C), finishes the
"fast" checks the schema cannot express (dates, base64, required members), and
writes the same records, counts and notes the ordinary path would. It reads only
the common, well-formed case: a resource that is odd in any way it does not mirror
(no id, a status that is skipped, contained resources, our own suggestions, a
Condition without a code…) is declined before anything is recorded, and the caller
reads that line the ordinary way. `tests/test_compact_reader.py` checks both paths
give identical timelines and reports on messy data.

Concepts are frozen structs: each distinct one is mapped once per builder, and what
its mapping noted in the report is replayed whenever it recurs.
"""
from __future__ import annotations

import base64
import binascii
import threading
from typing import Callable

from fhir_assist.fhir.datetimes import check_fhir_datetime, is_fhir_date, parse_fhir_date
from fhir_assist.fhir.references import reference_id

from ..own_resources import is_our_suggestion
from . import compact as c
from .codes import CodeMapper
from .notes import attachment_text
from .problem_list import PROBLEM_LIST_CATEGORY, problem_entry
from .records import EncounterRecord, ItemRecord, MedicationRef, service_name


class _Declined(Exception):
    """The resource is not one this reader mirrors exactly: read it the ordinary way."""


class _Recorder:
    """Stands in for the report while a concept is mapped, keeping what the mapping noted."""

    def __init__(self):
        self.calls: list[tuple] = []

    def note(self, *args):
        self.calls.append(("note", args))

    def unknown_code(self, *args):
        self.calls.append(("unknown_code", args))

    def skip(self, *args):
        self.calls.append(("skip", args))


class ConceptTables:
    """Concept → (mapping, what the mapping noted), per kind of code.

    Mapping is a pure function of the concept, so one set of tables may serve one
    builder or every hook call of a process (`shared`): a hospital's records repeat
    the same few thousand concepts. The lock only guards a miss; `limit` bounds memory.
    """

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.recorder = _Recorder()
        mapper = CodeMapper(self.recorder)
        self.dx = (mapper.diagnoses, {})
        self.proc = (mapper.procedures, {})
        self.med = (mapper.medication, {})

    def mapped(self, table, concept: c.Concept):
        method, memo = table
        hit = memo.get(concept)
        if hit is None:
            with self.lock:
                self.recorder.calls = []
                hit = (method(c.concept_dict(concept)), tuple(self.recorder.calls))
                if self.limit is not None and len(memo) >= self.limit:
                    self._reset()        # tables dropped; this table object keeps the one hit
                memo[concept] = hit
        return hit


_shared_tables: ConceptTables | None = None


def shared_tables() -> ConceptTables:
    """The process-wide tables the hook calls share."""
    global _shared_tables
    if _shared_tables is None:
        # A few thousand concepts cover a hospital's usual codes; each entry holds its concept and
        # mapping (under 1 KB), so a full table is tens of MB at most, then it starts again.
        _shared_tables = ConceptTables(limit=20_000)
    return _shared_tables


def _when(value: str | None):
    """(moment, date_only, zone_assumed) of a dateTime the "fast" check accepts; None when absent."""
    if value is None:
        return None
    parsed = check_fhir_datetime(value)
    if parsed is None or parsed[0] is None:  # unreadable in UTC: the ordinary path notes it
        raise _Declined
    return parsed


def _ref(reference: c.Reference | None, rtype: str) -> str | None:
    return _ref_id(reference.reference, rtype) if reference is not None else None


def _ref_id(text: str | None, rtype: str) -> str | None:
    """`reference_id(text, rtype)`, its usual "Type/id" case inline (two per resource)."""
    if text is None:
        return None
    kind, sep, rid = text.partition("/")
    if sep and kind == rtype and "/" not in rid and " " not in text and "?" not in text:
        return rid or None
    return reference_id(text, rtype)


def _has_code(concepts, code: str) -> bool:
    for concept in concepts or ():
        for coding in concept.coding or ():
            if coding.code == code:
                return True
    return False


class CompactReader:
    """`reader(line)` → True when the line was read into `builder`, False to read it the ordinary way."""

    def __init__(self, builder, tables: ConceptTables | None = None):
        from .timeline import (_GENDER_ALIASES, _OPEN_STATUS, _SKIP_CONDITION_VERIFICATION,
                               _SKIP_ENCOUNTER_STATUS, _SKIP_MEDICATION_STATUS, _SKIP_PROCEDURE_STATUS)
        self.builder = builder
        self.report = builder.report
        self._tables = tables if tables is not None else ConceptTables()
        self._gender = _GENDER_ALIASES
        self._open = _OPEN_STATUS
        self._skip_verification = _SKIP_CONDITION_VERIFICATION
        self._skip_encounter = _SKIP_ENCOUNTER_STATUS
        self._skip_medication = _SKIP_MEDICATION_STATUS
        self._skip_procedure = _SKIP_PROCEDURE_STATUS
        self._counts = dict.fromkeys(("Patient", "Encounter", "Condition", "Procedure", "MedicationRequest",
                                      "Medication", "DocumentReference"), 0)
        # functions, not bound methods (no reference cycle: see TimelineBuilder)
        cls = type(self)
        self._handlers: dict[type, Callable] = {
            c.Patient: cls._patient, c.Encounter: cls._encounter, c.Condition: cls._condition,
            c.Procedure: cls._procedure, c.MedicationRequest: cls._medication_request,
            c.Medication: cls._medication, c.DocumentReference: cls._document,
        }

    def __call__(self, line: bytes) -> bool:
        try:
            resource = c.decode_resource(line)
        except c.DECODE_ERRORS:
            return False
        return self.read(resource)

    def read(self, resource) -> bool:
        """Read a decoded resource into the builder; False (nothing recorded) when declined."""
        try:
            self._handlers[type(resource)](self, resource)
        except _Declined:
            return False
        return True

    # -- shared steps ------------------------------------------------------------
    def _mapped(self, kind: str, concept: c.Concept):
        """(result, what the mapping noted) of a concept, computed once per distinct concept."""
        tables = self._tables
        return tables.mapped(getattr(tables, kind), concept)

    def _replay(self, calls) -> None:
        report = self.report
        for name, args in calls:     # usually none: a code that maps cleanly notes nothing
            getattr(report, name)(*args)

    def _accept(self, rtype: str) -> None:
        """Count the resource as the "fast" validator and `TimelineBuilder.add` would
        (into the report at `finish()`)."""
        self._counts[rtype] += 1
        self.builder._order += 1

    def finish(self) -> None:
        """Put the resources read here into the report's counts."""
        for rtype, n in self._counts.items():
            if n:
                self.report.resources[rtype] += n
                self.report.validation["fast"] += n
                self._counts[rtype] = 0

    def _dated(self, parsed):
        """`TimelineBuilder._date` on an already parsed value."""
        if parsed is None:
            return None
        moment, date_only, assumed = parsed
        if moment is None:
            self.report.note("unreadable dates ignored")
            return None
        if assumed:
            self.report.note("times without a time zone read as UTC")
        return moment, date_only

    def _put(self, rtype: str, rid: str, item: ItemRecord) -> None:
        items = self.builder.items
        key = (rtype, rid)
        if key in items:
            self.report.note("duplicate resources (same type and id), last one kept")
        items[key] = item

    # -- one handler per type: checks first (may decline), then records -----------
    def _patient(self, r: c.Patient) -> None:
        rid, birth, given = r.id, r.birthDate, r.gender
        if rid is None or r.contained is not None or (birth is not None and not is_fhir_date(birth)):
            raise _Declined
        self._accept("Patient")
        report, patients = self.report, self.builder.patients
        gender = self._gender.get(str(given or "").strip().lower())
        if given is not None and gender is None:
            report.note("Patient.gender values not understood")
        elif gender is not None and gender != given:
            report.note("Patient.gender values normalised (e.g. 'M' → male)")
        if rid in patients:
            report.note("duplicate resources (same type and id), last one kept")
        patients[rid] = (gender, parse_fhir_date(birth))

    def _encounter(self, r: c.Encounter) -> None:
        rid, status, period = r.id, r.status, r.period
        if rid is None or r.contained is not None or status in self._skip_encounter:
            raise _Declined
        start = end = None
        if period is not None:
            start, end = _when(period.start), _when(period.end)
        reasons = [self._mapped("dx", concept) for concept in r.reasonCode or ()]
        self._accept("Encounter")
        report = self.report
        enc = EncounterRecord()
        enc.id = rid
        enc.patient = _ref(r.subject, "Patient")
        start, end = self._dated(start), self._dated(end)
        enc.start = start[0] if start else None
        enc.end = end[0] if end else None
        enc.open = enc.end is None and status in self._open
        enc.cls = r.class_.code if r.class_ is not None else None
        enc.part_of = _ref(r.partOf, "Encounter")
        service = r.serviceType
        enc.service = None if service is None else service_name(
            ((c.system, c.code) for c in service.coding or ()), service.text)
        enc.diagnoses = []
        for dx in r.diagnosis or ():
            cid = _ref_id(dx.condition.reference, "Condition")
            if cid is None:
                report.skip("Encounter.diagnosis without a Condition reference")
                continue
            enc.diagnoses.append((cid, dx.rank))
        enc.reason_codes, enc.reason_unknown = [], []
        for (codes, unknown), calls in reasons:
            self._replay(calls)
            enc.reason_codes.extend(code for code in codes if code not in enc.reason_codes)
            enc.reason_unknown.extend(unknown)
        enc.reason_refs = [x for x in (_ref(ref, "Condition") for ref in r.reasonReference or ()) if x]
        encounters = self.builder.encounters
        if rid in encounters:
            report.note("duplicate resources (same type and id), last one kept")
        encounters[rid] = enc

    def _condition(self, r: c.Condition) -> None:
        rid, code = r.id, r.code
        if rid is None or r.subject is None or code is None or r.contained is not None:
            raise _Declined
        if (r.meta is not None or r.identifier is not None) \
                and is_our_suggestion({"meta": r.meta, "identifier": r.identifier}):
            raise _Declined
        verification = r.verificationStatus
        if verification is not None and any(x.code in self._skip_verification for x in verification.coding or ()):
            raise _Declined
        (codes, unknown), calls = self._mapped("dx", code)
        if not codes and not unknown:
            raise _Declined
        recorded, onset = _when(r.recordedDate), _when(r.onsetDateTime)
        if r.onsetPeriod is not None:
            period_start = _when(r.onsetPeriod.start)
            _when(r.onsetPeriod.end)
            if onset is None:
                onset = period_start
        b = self.builder
        self._counts["Condition"] += 1
        b._order += 1
        if calls:
            self._replay(calls)
        dates = [d for d in (self._dated(recorded), self._dated(onset)) if d]
        enc, patient = _ref(r.encounter, "Encounter"), _ref_id(r.subject.reference, "Patient")
        if rid in b.conditions:
            self.report.note("duplicate resources (same type and id), last one kept")
        b.conditions[rid] = ItemRecord("Condition", patient, [enc] if enc else [], dates, list(codes),
                                       list(unknown), b._order)
        if _has_code(r.category, PROBLEM_LIST_CATEGORY):
            b.problems[patient][rid] = problem_entry(self._problem_view(r), rid, codes, b._date, self.report)

    @staticmethod
    def _problem_view(r: c.Condition) -> dict:
        """The fields `problem_list.problem_entry` reads, as the JSON reader gives them."""
        return {"clinicalStatus": c.concept_dict(r.clinicalStatus), "recordedDate": r.recordedDate,
                "onsetDateTime": r.onsetDateTime, "onsetPeriod": c.period_dict(r.onsetPeriod),
                "abatementDateTime": r.abatementDateTime, "abatementPeriod": r.abatementPeriod,
                "abatementAge": r.abatementAge, "abatementRange": r.abatementRange,
                "abatementString": r.abatementString, "abatementBoolean": r.abatementBoolean}

    def _procedure(self, r: c.Procedure) -> None:
        rid, code = r.id, r.code
        if rid is None or r.subject is None or code is None or r.contained is not None \
                or r.status in self._skip_procedure:
            raise _Declined
        (codes, unknown), calls = self._mapped("proc", code)
        if not codes and not unknown:
            raise _Declined
        when = _when(r.performedDateTime)
        if r.performedPeriod is not None:
            period_start = _when(r.performedPeriod.start)
            _when(r.performedPeriod.end)
            if when is None:
                when = period_start
        self._accept("Procedure")
        self._replay(calls)
        dates = [d for d in (self._dated(when),) if d]
        enc = _ref(r.encounter, "Encounter")
        self._put("Procedure", rid, ItemRecord("Procedure", _ref(r.subject, "Patient"), [enc] if enc else [],
                                               dates, list(codes), list(unknown), self.builder._order))

    def _medication_request(self, r: c.MedicationRequest) -> None:
        rid, concept = r.id, r.medicationCodeableConcept
        if rid is None or r.subject is None or r.contained is not None or r.status in self._skip_medication:
            raise _Declined
        calls = ()
        if concept is not None:
            (rxcui, unmapped), calls = self._mapped("med", concept)
        elif r.medicationReference is not None:
            target = _ref_id(r.medicationReference.reference, "Medication")
            if target is None or target.startswith("#"):
                raise _Declined
            rxcui, unmapped = MedicationRef(target), None   # resolved in build()
        else:
            raise _Declined
        authored = _when(r.authoredOn)
        self._counts["MedicationRequest"] += 1
        self.builder._order += 1
        if calls:
            self._replay(calls)
        enc = _ref(r.encounter, "Encounter")
        dates = [d for d in (self._dated(authored),) if d]
        self._put("MedicationRequest", rid, ItemRecord("MedicationRequest", _ref(r.subject, "Patient"),
                                                       [enc] if enc else [], dates, rxcui, unmapped,
                                                       self.builder._order))

    def _medication(self, r: c.Medication) -> None:
        if r.contained is not None:
            raise _Declined
        self._accept("Medication")
        if r.id is not None:
            self.builder.medications[r.id] = c.concept_dict(r.code)

    def _document(self, r: c.DocumentReference) -> None:
        rid, content, context = r.id, r.content, r.context
        if rid is None or content is None or r.contained is not None or r.status == "entered-in-error" \
                or r.docStatus == "entered-in-error":
            raise _Declined
        for part in content:
            if part.attachment.data is not None:
                try:
                    base64.b64decode(part.attachment.data, validate=True)
                except (binascii.Error, ValueError):
                    raise _Declined from None
        when = _when(r.date)
        if context is not None and context.period is not None:
            period_start = _when(context.period.start)
            _when(context.period.end)
            if when is None:
                when = period_start
        self._accept("DocumentReference")
        texts = []
        for part in content:
            a = part.attachment
            text = attachment_text({"contentType": a.contentType, "data": a.data, "url": a.url}, self.report)
            if text:
                texts.append(text)
        if not texts:
            return
        encounters = [e for e in (_ref(x, "Encounter") for x in (context.encounter if context else None) or ()) if e]
        dates = [d for d in (self._dated(when),) if d]
        self._put("DocumentReference", rid, ItemRecord("DocumentReference", _ref(r.subject, "Patient"),
                                                       encounters, dates, "\n".join(texts), None,
                                                       self.builder._order))
