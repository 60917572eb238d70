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


_DECODE, _FHIR_ID = c._DECODER.decode, c._FHIR_ID


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

    def mapped_json(self, table, data: bytes):
        """`mapped` of a concept given as its JSON text (memoised by the text); declined
        when the text is null or not a concept the "fast" check accepts."""
        hit = table[1].get(data)
        if hit is None:
            try:
                concept = c.decode_concept(data)
            except c.DECODE_ERRORS:
                raise _Declined from None
            if concept is None:
                raise _Declined
            hit = self.mapped(table, concept)   # checks the codes
            with self.lock:
                table[1][data] = hit
        return hit

    def mapped(self, table, concept: c.Concept):
        method, memo = table
        hit = memo.get(concept)
        if hit is None:
            _check_codes(concept)
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
    """(moment, date_only, zone_assumed) of a dateTime the "fast" check accepts; None when absent.
    Kept as it is in the records' dates (they read the first two)."""
    if value is None:
        return None
    parsed = check_fhir_datetime(value)
    if parsed is None or parsed[0] is None:  # unreadable in UTC: the ordinary path notes it
        raise _Declined
    return parsed


# Codes and references of white space only fail the "fast" check. The schema bounds their
# length only (a pattern would cost a regex call per string), so the reader checks each one
# it is given: references as it resolves them (once per distinct text where they are looked
# up in a table), concepts as it maps them (once per distinct concept) and the concepts it
# does not map one by one (`_check_codes`). `tests/test_compact_reader.py` puts white space
# in every such field.
def _check_codes(*concepts) -> None:
    """Decline when a coding of these concepts (None for absent) has a code of white space only."""
    for concept in concepts:
        if concept is not None:
            for coding in concept.coding or ():
                code = coding.code
                if code is not None and code.isspace():
                    raise _Declined


def _ref_id(text: str | None, rtype: str) -> str | None:
    """`reference_id(text, rtype)`, its usual "Type/id" case inline; declined when blank."""
    if text is None:
        return None
    if text.isspace():
        raise _Declined
    kind, sep, rid = text.partition("/")
    if sep and kind == rtype and "/" not in rid and " " not in text and "?" not in text:
        return rid or None
    return reference_id(text, rtype)


class _Refs(dict):
    """Reference text → id for one target type, each text worked out once: an export names
    the same patient and encounter from dozens of resources (and keeps one string for them)."""
    __slots__ = ("rtype",)

    def __init__(self, rtype: str):
        super().__init__()
        self.rtype = rtype

    def __missing__(self, text):
        rid = _ref_id(text, self.rtype)      # may decline: nothing is kept then
        self[text] = rid
        return rid


def _has_code(concepts, code: str) -> bool:
    for concept in concepts or ():
        for coding in concept.coding or ():
            if coding.code == code:
                return True
    return False


def _dated(report, first, second=None) -> list:
    """The record's dates from already checked values (None when absent), noting assumed zones
    as `TimelineBuilder._date` does."""
    dates = []
    for when in (first, second):
        if when is not None:
            if when[2]:
                report.note("times without a time zone read as UTC")
            dates.append(when)
    return dates


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
        self._patient_ids, self._encounter_ids = _Refs("Patient"), _Refs("Encounter")
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
        # c.decode_resource, inline
        try:
            resource = _DECODE(line)
            rid = resource.id
            # the usual id (letters, digits, '-') without a regex call; anything else through it
            if rid is not None and not (rid.isascii() and rid.replace("-", "").isalnum()) \
                    and _FHIR_ID(rid) is None:
                return False
            self._handlers[type(resource)](self, resource)
        except (_Declined, *c.DECODE_ERRORS):
            return False
        return True

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
        table = getattr(tables, kind)
        hit = table[1].get(concept)
        return hit if hit is not None else tables.mapped(table, concept)

    def _replay(self, calls) -> None:
        report = self.report
        for name, args in calls:     # usually none: a code that maps cleanly notes nothing
            getattr(report, name)(*args)

    def _accept(self, rtype: str) -> int:
        """Count the resource as the "fast" validator and `TimelineBuilder.add` would
        (into the report at `finish()`); its place in the reading order."""
        self._counts[rtype] += 1
        builder = self.builder
        builder._order += 1
        return builder._order

    def finish(self) -> None:
        """Put the resources read here into the report's counts."""
        for rtype, n in self._counts.items():
            if n:
                self.report.resources[rtype] += n
                self.report.validation["fast"] += n
                self._counts[rtype] = 0

    def _put(self, rtype: str, rid: str, item: ItemRecord) -> None:
        items = self.builder.items
        key = (rtype, rid)
        if key in items:
            self.report.note("duplicate resources (same type and id), last one kept")
        items[key] = item

    # -- one handler per type: checks first (may decline), then records -----------
    def _patient(self, r: c.Patient) -> None:
        rid, birth, given = r.id, r.birthDate, r.gender
        if rid is None or r.contained is not None:
            raise _Declined
        birthday = None
        if birth is not None:
            if not is_fhir_date(birth):
                raise _Declined
            birthday = parse_fhir_date(birth)
        self._accept("Patient")
        report, patients = self.report, self.builder.patients
        gender = self._gender.get(str(given or "").strip().lower())
        if given is not None and gender is None:
            report.note("Patient.gender values not understood")
        elif gender is not None and gender != given:
            report.note("Patient.gender values normalised (e.g. 'M' → male)")
        if rid in patients:
            report.note("duplicate resources (same type and id), last one kept")
        patients[rid] = (gender, birthday)

    def _encounter(self, r: c.Encounter) -> None:
        rid, status, period, cls = r.id, r.status, r.period, r.class_
        if rid is None or r.contained is not None or status in self._skip_encounter:
            raise _Declined
        start = end = None
        if period is not None:
            start, end = _when(period.start), _when(period.end)
        reasons = [self._mapped("dx", concept) for concept in r.reasonCode or ()]
        if cls is not None and cls.code is not None and cls.code.isspace():
            raise _Declined
        if r.type is not None:
            _check_codes(*r.type)
        subject, part_of, cited = r.subject, r.partOf, []
        for dx in r.diagnosis or ():         # mostly cited once (not worth a table)
            if dx.use is not None:
                _check_codes(dx.use)
            text = dx.condition.reference
            if text is not None and text[:10] == "Condition/" and "/" not in text[10:] and " " not in text \
                    and "?" not in text:    # _ref_id's usual case, inline
                cited.append((text[10:] or None, dx.rank))
            else:
                cited.append((_ref_id(text, "Condition"), dx.rank))
        reason_refs = [_ref_id(x.reference, "Condition") for x in r.reasonReference or ()]
        patient = self._patient_ids[subject.reference] if subject is not None else None
        part_of = self._encounter_ids[part_of.reference] if part_of is not None else None
        self._accept("Encounter")
        report = self.report
        if start is not None and start[2] or end is not None and end[2]:
            _dated(report, start, end)
        start = start[0] if start is not None else None
        end = end[0] if end is not None else None
        diagnoses = []
        for cid, rank in cited:
            if cid is None:
                report.skip("Encounter.diagnosis without a Condition reference")
            else:
                diagnoses.append((cid, rank))
        reason_codes, reason_unknown = [], []
        for (codes, unknown), calls in reasons:
            self._replay(calls)
            reason_codes.extend(code for code in codes if code not in reason_codes)
            reason_unknown.extend(unknown)
        service = r.serviceType
        enc = EncounterRecord(
            id=rid, patient=patient, start=start, end=end, open=end is None and status in self._open,
            cls=cls.code if cls is not None else None, part_of=part_of, diagnoses=diagnoses,
            reason_codes=reason_codes, reason_unknown=reason_unknown, reason_refs=[x for x in reason_refs if x],
            service=None if service is None else service_name(
                ((x.system, x.code) for x in service.coding or ()), service.text))
        encounters = self.builder.encounters
        if rid in encounters:
            report.note("duplicate resources (same type and id), last one kept")
        encounters[rid] = enc

    def _condition(self, r: c.Condition) -> None:
        rid = r.id
        if rid is None or r.subject is None or r.contained is not None:
            raise _Declined
        if (r.meta is not None or r.identifier is not None) \
                and is_our_suggestion({"meta": r.meta, "identifier": r.identifier}):
            raise _Declined
        verification, category = r.verificationStatus, r.category
        if verification is not None and any(x.code in self._skip_verification for x in verification.coding or ()):
            raise _Declined
        if verification is not None or r.clinicalStatus is not None or category is not None:
            _check_codes(verification, r.clinicalStatus, *(category or ()))
        tables, code = self._tables, bytes(r.code)
        hit = tables.dx[1].get(code)
        (codes, unknown), calls = hit if hit is not None else tables.mapped_json(tables.dx, code)
        if not codes and not unknown:
            raise _Declined
        recorded = _when(r.recordedDate)
        onset = None if r.onsetDateTime is None else _when(r.onsetDateTime)
        if r.onsetPeriod is not None:
            period_start = _when(r.onsetPeriod.start)
            _when(r.onsetPeriod.end)
            if onset is None:
                onset = period_start
        enc = r.encounter
        enc = self._encounter_ids[enc.reference] if enc is not None else None
        patient = self._patient_ids[r.subject.reference]
        b = self.builder
        self._counts["Condition"] += 1
        b._order += 1
        report = self.report
        if calls:
            self._replay(calls)
        dates = [recorded] if onset is None and recorded is not None and not recorded[2] \
            else _dated(report, recorded, onset)
        conditions = b.conditions
        known = len(conditions)
        # the mapping's lists are shared, not copied: assembly only reads them
        conditions[rid] = ItemRecord("Condition", patient, [enc] if enc else [], dates, codes, unknown, b._order)
        if len(conditions) == known:
            report.note("duplicate resources (same type and id), last one kept")
        if category is not None and _has_code(category, PROBLEM_LIST_CATEGORY):
            b.problems[patient][rid] = problem_entry(self._problem_view(r), rid, codes, b._date, report)

    @staticmethod
    def _problem_view(r: c.Condition) -> dict:
        """The fields `problem_list.problem_entry` reads, as the JSON reader gives them."""
        return {"clinicalStatus": c.concept_dict(r.clinicalStatus), "recordedDate": r.recordedDate,
                "onsetDateTime": r.onsetDateTime, "onsetPeriod": c.period_dict(r.onsetPeriod),
                "abatementDateTime": r.abatementDateTime, "abatementPeriod": r.abatementPeriod,
                "abatementAge": r.abatementAge, "abatementRange": r.abatementRange,
                "abatementString": r.abatementString, "abatementBoolean": r.abatementBoolean}

    def _procedure(self, r: c.Procedure) -> None:
        rid = r.id
        if rid is None or r.subject is None or r.contained is not None or r.status in self._skip_procedure:
            raise _Declined
        tables = self._tables
        (codes, unknown), calls = tables.mapped_json(tables.proc, bytes(r.code))
        if not codes and not unknown:
            raise _Declined
        when = _when(r.performedDateTime)
        if r.performedPeriod is not None:
            period_start = _when(r.performedPeriod.start)
            _when(r.performedPeriod.end)
            if when is None:
                when = period_start
        enc = r.encounter
        enc = self._encounter_ids[enc.reference] if enc is not None else None
        patient = self._patient_ids[r.subject.reference]
        order = self._accept("Procedure")
        if calls:
            self._replay(calls)
        self._put("Procedure", rid, ItemRecord("Procedure", patient,
                                               [enc] if enc else [], _dated(self.report, when), codes,
                                               unknown, order))

    def _medication_request(self, r: c.MedicationRequest) -> None:
        rid, concept = r.id, bytes(r.medicationCodeableConcept)
        if rid is None or r.subject is None or r.contained is not None or r.status in self._skip_medication:
            raise _Declined
        calls = ()
        if concept != b"null":
            tables = self._tables
            hit = tables.med[1].get(concept)
            (rxcui, unmapped), calls = hit if hit is not None else tables.mapped_json(tables.med, concept)
        elif r.medicationReference is not None:
            target = _ref_id(r.medicationReference.reference, "Medication")
            if target is None or target.startswith("#"):
                raise _Declined
            rxcui, unmapped = MedicationRef(target), None   # resolved in build()
        else:
            raise _Declined
        authored = _when(r.authoredOn)
        enc = r.encounter
        enc = self._encounter_ids[enc.reference] if enc is not None else None
        patient = self._patient_ids[r.subject.reference]
        self._counts["MedicationRequest"] += 1
        b = self.builder
        b._order += 1
        if calls:
            self._replay(calls)
        dates = [] if authored is None else [authored] if not authored[2] else _dated(self.report, authored)
        items = b.items
        known = len(items)
        items["MedicationRequest", rid] = ItemRecord("MedicationRequest", patient,
                                                     [enc] if enc else [], dates, rxcui, unmapped, b._order)
        if len(items) == known:
            self.report.note("duplicate resources (same type and id), last one kept")

    def _medication(self, r: c.Medication) -> None:
        if r.contained is not None:
            raise _Declined
        _check_codes(r.code)
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
        _check_codes(r.type)
        refs, subject = self._encounter_ids, r.subject
        encounters = [e for e in (refs[x.reference] for x in (context.encounter if context else None) or ()) if e]
        patient = self._patient_ids[subject.reference] if subject is not None else None
        order = self._accept("DocumentReference")
        texts = []
        for part in content:
            a = part.attachment
            text = attachment_text({"contentType": a.contentType, "data": a.data, "url": a.url}, self.report)
            if text:
                texts.append(text)
        if not texts:
            return
        self._put("DocumentReference", rid, ItemRecord("DocumentReference", patient,
                                                       encounters, _dated(self.report, when), "\n".join(texts),
                                                       None, order))
