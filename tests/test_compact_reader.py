"""The compact reader (msgspec structs straight into timeline records) against the dict reader.

`load_cohort(validate="fast")` reads NDJSON through `adapter.compact_reader`; the reference
is the ordinary path: every line parsed into dicts, validated "fast" and given to
`TimelineBuilder.add`. Both must give the same timelines (codes with their displays, dates,
notes, problem lists) and the same report (counts, skips, problems with their messages,
notes, unknown codes) — on the hand-written messy fixtures, on both synthetic profiles and
on exports mutated at random in the ways real data goes wrong.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import random
from pathlib import Path

import pytest

from fhir_assist.adapter.compact_reader import CompactReader
from fhir_assist.adapter.files import iter_resources
from fhir_assist.adapter.report import IngestReport
from fhir_assist.adapter.timeline import TimelineBuilder, load_cohort
from fhir_assist.fhir.datetimes import check_fhir_datetime, is_fhir_datetime, read_fhir_datetime

DATA = Path(__file__).parent / "data" / "messy"


def _canonical(value):
    """Timelines as plain data, every field compared (Code.display too, which == ignores)."""
    if dataclasses.is_dataclass(value):
        return {"type": type(value).__name__,
                **{f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return repr(value)       # keeps the time zone object, not only the moment
    return value


def _report(report: IngestReport) -> dict:
    out = report.to_dict()
    for key in ("events", "skipped", "unknown_codes", "resources", "validation"):
        out[key] = dict(sorted(out[key].items()))
    return out


def _reference(path) -> tuple[list, dict]:
    """The dict path: what load_cohort did before the compact reader."""
    report = IngestReport()
    builder = TimelineBuilder(report)
    builder.add_all(iter_resources(path, validate="fast", report=report))
    return _canonical(builder.build()), _report(report)


def _compact(path) -> tuple[list, dict]:
    cohort = load_cohort(path, validate="fast", progress=False)
    return _canonical(cohort.timelines), _report(cohort.report)


def _assert_same(path) -> None:
    ref_timelines, ref_report = _reference(path)
    timelines, report = _compact(path)
    assert report == ref_report
    assert timelines == ref_timelines


def _consumed_share(path) -> float:
    """The share of resources the compact reader read itself (the rest it declined)."""
    report = IngestReport()
    reader = CompactReader(TimelineBuilder(report))
    taken = [0]

    def counting(line):
        ok = reader(line)
        taken[0] += ok
        return ok

    declined = sum(1 for _ in iter_resources(path, validate="fast", report=report, consume=counting))
    return taken[0] / max(taken[0] + declined, 1)


@pytest.mark.parametrize("name", ["bulk", "malformed.ndjson", "bundles"])
def test_messy_fixtures_read_the_same_both_ways(name):
    _assert_same(DATA / name)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from fhir_assist.synth.generate import generate_cohort
    out = {}
    for profile in ("inpatient", "ambulatory"):
        path = tmp_path_factory.mktemp(profile)
        generate_cohort(40, 11, path, progress=False, workers=1, profile=profile)
        out[profile] = path
    return out


@pytest.mark.parametrize("profile", ["inpatient", "ambulatory"])
def test_synthetic_profiles_read_the_same_and_mostly_compact(synthetic, profile):
    _assert_same(synthetic[profile])
    # The compact path must actually carry a clean export (else this file tests nothing).
    assert _consumed_share(synthetic[profile]) > 0.95


# -- random damage ---------------------------------------------------------------
_DATES = ["2019-02-30", "2019-13-01", "2019", "2019-04", "2019-04-01T10:00", "2019-04-01T10:00:60Z",
          "2019-04-01T10:00:00", "2019-04-01T10:00:00.5+14:00", "2019-04-01T10:00:00+15:00", " 2019-04-01",
          "0000", "2019-04-01t10:00:00z", "2019-04-01T10:00:00.123456789-03:30", "", 20190401]
_VALUES = [None, "", " ", "  x ", 0, -1, 1.0, 3, True, [], {}, [None], [{}], {"reference": ""},
           {"reference": 5}, {"reference": "Patient/"}, {"reference": "#med"}, {"reference": "urn:uuid:abc"},
           {"coding": "x"}, {"coding": [{"code": " "}]}, {"coding": [{"code": 5}]}, {"text": "aspirin"},
           "entered-in-error", "cancelled", "in-progress", "refuted", "M", "f", "bad id!", "a" * 65,
           {"attachment": {"data": "not base64!"}}, {"attachment": None}, [{"attachment": {"url": "u"}}],
           [{"resourceType": "Medication", "id": "med", "code": {"text": "aspirin"}}],
           {"start": "2019-04-01", "end": "2019-02-30"}, {"start": "2019-04-01T10:00:00+01:00", "end": 5},
           {"end": "2019-04-03"}, {"encounter": [{"reference": "Encounter/x"}], "period": {"end": "x"}}]


def _damage(resource: dict, rng: random.Random) -> dict:
    resource = copy.deepcopy(resource)
    paths = list(_paths(resource))
    for _ in range(rng.randint(1, 3)):
        parent, key = rng.choice(paths)
        roll = rng.random()
        if roll < 0.25:
            value = rng.choice(_DATES)
        elif roll < 0.35 and isinstance(parent, dict):
            parent.pop(key, None)
            continue
        elif roll < 0.45 and isinstance(parent, dict):
            key = rng.choice(["contained", "meta", "identifier", "docStatus", "status", "category",
                              "verificationStatus", "onsetPeriod", "abatementDateTime", "class",
                              "medicationReference", "rank", "use", "partOf", "reasonCode",
                              "performedPeriod", "context", "period", "date", "abatementPeriod"])
            value = rng.choice(_VALUES + _DATES)
        else:
            value = rng.choice(_VALUES)
        try:
            parent[key] = value
        except (IndexError, TypeError):
            pass
    return resource


def _paths(node, parent=None, key=None):
    if parent is not None:
        yield parent, key
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k != "resourceType":
                yield from _paths(v, node, k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, node, i)


def test_randomly_damaged_exports_read_the_same(synthetic, tmp_path):
    rng = random.Random(20261203)
    for profile, path in synthetic.items():
        out = tmp_path / profile
        out.mkdir()
        for source in sorted(path.glob("*.ndjson")):
            lines = source.read_text().splitlines()
            with open(out / source.name, "w") as handle:
                for line in lines:
                    resource = json.loads(line)
                    if rng.random() < 0.35:
                        resource = _damage(resource, rng)
                    handle.write(json.dumps(resource) + "\n")
        _assert_same(out)


def test_one_parse_date_check_agrees_with_the_two_functions():
    rng = random.Random(7)
    pieces = ["2019", "-", "02", "29", "30", "T", "24", "23", ":", "59", "60", ".", "123", "1234567", ",", "t",
              "Z", "+", "05:30", "14:00", "14:01", " ", "0", "\u0661", "2020-02-29", "2016-02-21T16:08:39",
              "0001-01-01T00:00:00", "9999-12-31T23:59:59", "+00:00", "-00:00", "-03:30", "+24:00", "+05:3"]
    samples = ["2016-02-21T16:08:39.792518Z", "2016-02-21T16:08:39+02:00", "2016-02-21", "2016-02-30",
               "2016-02-21T16:08:60Z", "2016-02-21T16:08:39", "2016-02-21T16:08Z",
               # near misses of the common shape, which fromisoformat alone would read
               "2016-02-21T16:08:39,5Z", "2016-02-21T16:08:39.Z", "2016-02-21T16:08:39.5", "2016-02-21T16:08:39.1a2Z",
               "2016-02-21T16:08:3\u0661Z", "2016-02-21T16:08:39.\u0661Z", "2016-02-21T16:08:39+0530",
               "2016-02-21T16:08:39+05:3x", "2016-02-21T16:08:39+05", "2016-02-21 16:08:39Z", "2016-02-21t16:08:39Z",
               "20160221T160839Z", "2016-02-21T1608:39Z", "2016-02-21T16:08:39.123456789-03:30", "2016-02\u0661",
               "2016-0\u0661-21", "+016-02-21", "2016-02-21T16:08:39.5+24:00", "2016-02-21T16:08:39Z "]
    samples += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))) for _ in range(20000)]
    for value in samples:
        try:
            expected = read_fhir_datetime(value) if is_fhir_datetime(value) else None
        except OverflowError:      # a moment that leaves datetime's range once in UTC
            with pytest.raises(OverflowError):
                check_fhir_datetime(value)
            continue
        got = check_fhir_datetime(value)
        assert got == expected, value
        if got is not None and got[0] is not None:
            assert got[0].tzinfo == expected[0].tzinfo, value


_PATIENT = {"reference": "Patient/p1"}
_CODE = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]}
_EDGES = [
    {"resourceType": "Patient", "id": "p1", "gender": "M", "birthDate": "1950-02-30"},
    {"resourceType": "Patient", "id": "p1", "gender": "F", "birthDate": "1950"},
    {"resourceType": "Encounter", "id": "e1", "subject": _PATIENT, "status": "in-progress",
     "period": {"start": "2020-01-01T10:00:00+01:00"}, "class": {"code": "IMP"},
     "serviceType": {"coding": [{"system": "http://snomed.info/sct", "code": "394579002"}], "text": "Cardiology"}},
    {"resourceType": "Encounter", "id": "e2", "subject": _PATIENT, "period": {"start": "2020-02-01", "end": "x"},
     "serviceType": {"text": "  General   Surgery "}},
    # a real dateTime that UTC cannot hold (the year before year 1 once the offset is taken off)
    {"resourceType": "Encounter", "id": "e4", "subject": _PATIENT, "period": {"start": "0001-01-01T00:00:00+05:00"},
     "serviceType": [{"text": "a list, not a CodeableConcept"}]},
    {"resourceType": "Condition", "id": "c5", "subject": _PATIENT, "code": _CODE,
     "recordedDate": "0001-01-01T01:00:00.5+05:00"},
    {"resourceType": "Encounter", "id": "e3", "subject": _PATIENT, "period": {"start": "2020-03-01T10:00:00"},
     "diagnosis": [{"condition": {"reference": " "}}, {"condition": {"reference": "Condition/c1"}, "rank": 2}],
     "reasonReference": [{"reference": "Condition/c2"}], "reasonCode": [{"text": "chest pain"}]},
    {"resourceType": "Condition", "id": "c1", "subject": _PATIENT, "code": _CODE,
     "onsetPeriod": {"start": "2020-01-01", "end": "2020-02-30"}},
    {"resourceType": "Condition", "id": "c2", "subject": _PATIENT, "code": _CODE,
     "onsetPeriod": {"start": "2020-01-01"}, "category": [{"coding": [{"code": "problem-list-item"}]}],
     "clinicalStatus": {"coding": [{"code": " Active "}]}, "abatementString": "childhood"},
    {"resourceType": "Condition", "id": "c3", "subject": _PATIENT, "code": _CODE, "recordedDate": "2020-01-01",
     "category": [{"coding": [{"code": "problem-list-item"}]}], "abatementDateTime": "soon",
     "clinicalStatus": {"coding": [{"code": "resolved"}]}, "meta": {"tag": [{"system": "x", "code": "y"}]}},
    {"resourceType": "Condition", "id": "c4", "subject": _PATIENT, "code": {"text": "only text"},
     "recordedDate": "2020-01-01"},
    {"resourceType": "Procedure", "id": "x1", "subject": _PATIENT, "code": {"coding": [{"code": "0DTJ4ZZ"}]},
     "performedPeriod": {"start": "2020-01-01T12:00:00Z", "end": "2020-01-01T25:00:00Z"}},
    {"resourceType": "Procedure", "id": "x2", "subject": _PATIENT, "code": {"coding": [{"code": "99213"}]},
     "performedPeriod": {"start": "2020-01-01T12:00:00Z"}, "encounter": {"reference": "Encounter/e1"}},
    {"resourceType": "MedicationRequest", "id": "m1", "subject": _PATIENT, "medicationReference":
     {"reference": "Medication/med9"}, "authoredOn": "2020-01-01T10:30:00-05:00"},
    {"resourceType": "MedicationRequest", "id": "m2", "subject": _PATIENT,
     "medicationCodeableConcept": {"text": "Tylenol 500 mg"}, "authoredOn": "2020-01-01"},
    {"resourceType": "Medication", "id": "med9", "code": {"coding": [{"system": "rxnorm", "code": "6809"}]}},
    {"resourceType": "DocumentReference", "id": "d1", "subject": _PATIENT, "content": [
        {"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
     "context": {"period": {"start": "2020-01-01", "end": "2020-13-01"}}},
    {"resourceType": "DocumentReference", "id": "d2", "subject": _PATIENT, "content": [
        {"attachment": {"contentType": "text/html", "data": "PGI+aGk8L2I+"}}, {"attachment": {"url": "x"}}],
     "context": {"encounter": [{"reference": "Encounter/e1"}]}, "date": "2020-01-01T11:00:00Z"},
]


def test_hand_made_edge_cases_read_the_same(tmp_path):
    """Each field the "fast" check or the builder treats specially, one resource at a time and
    all together (ids shared, so duplicates and cross-references are exercised too)."""
    for i, resource in enumerate(_EDGES):
        path = tmp_path / f"one{i}.ndjson"
        path.write_text(json.dumps(resource) + "\n")
        _assert_same(path)
    path = tmp_path / "all.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in _EDGES + _EDGES[::-1]))
    _assert_same(path)


def test_decoding_refuses_bad_ids_and_leaves_blank_codes_to_the_reader():
    from fhir_assist.adapter import compact
    with pytest.raises(compact.DECODE_ERRORS):
        compact.decode_resource(b'{"resourceType":"Patient","id":"bad id"}')
    assert compact.decode_resource(b'{"resourceType":"Patient","id":"p-1.a"}').id == "p-1.a"
    # a code of white space only decodes; the reader declines it (and the line is read the ordinary way)
    line = b'{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},' \
           b'"code":{"coding":[{"code":"\\u00a0"}]}}'
    resource = compact.decode_resource(line)
    builder = TimelineBuilder(IngestReport())
    assert not CompactReader(builder).read(resource)


def test_truncated_gzip_reads_the_same_both_ways(tmp_path):
    """A read error part way: both paths keep the lines before it and name the same last line."""
    import gzip
    lines = "".join(json.dumps(r) + "\n" for r in (_EDGES * 40)[:600])
    blob = gzip.compress(("\ufeff" + lines).encode())
    path = tmp_path / "mixed.ndjson.gz"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    _assert_same(path)
    assert any("unreadable file after line" in p["message"] for p in _compact(path)[1]["problems"])


_FULL = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-02-03"},
    {"resourceType": "Encounter", "id": "e0", "subject": _PATIENT, "status": "finished",
     "period": {"start": "2020-01-01T10:00:00Z", "end": "2020-01-02T10:00:00Z"}},
    {"resourceType": "Encounter", "id": "e1", "subject": _PATIENT, "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
     "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "32485007"}]}],
     "period": {"start": "2020-01-01T12:00:00Z", "end": "2020-01-02T09:00:00Z"},
     "partOf": {"reference": "Encounter/e0"}, "reasonReference": [{"reference": "Condition/c1"}],
     "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R07.9"}]}],
     "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1,
                    "use": {"coding": [{"code": "DD"}]}}]},
    {"resourceType": "Condition", "id": "c1", "subject": _PATIENT, "encounter": {"reference": "Encounter/e1"},
     "code": _CODE, "clinicalStatus": {"coding": [{"code": "active"}]},
     "verificationStatus": {"coding": [{"code": "confirmed"}]},
     "category": [{"coding": [{"code": "encounter-diagnosis"}]}], "recordedDate": "2020-01-01"},
    {"resourceType": "Procedure", "id": "x1", "subject": _PATIENT, "encounter": {"reference": "Encounter/e1"},
     "status": "completed", "code": {"coding": [{"code": "0DTJ4ZZ"}]}, "performedDateTime": "2020-01-01T13:00:00Z"},
    {"resourceType": "MedicationRequest", "id": "m1", "subject": _PATIENT, "status": "active",
     "encounter": {"reference": "Encounter/e1"}, "authoredOn": "2020-01-01T14:00:00Z",
     "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                               "code": "6809"}]}},
    {"resourceType": "MedicationRequest", "id": "m2", "subject": _PATIENT, "status": "active",
     "medicationReference": {"reference": "Medication/med1"}, "authoredOn": "2020-01-01T14:00:00Z"},
    {"resourceType": "Medication", "id": "med1",
     "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809"}]}},
    {"resourceType": "DocumentReference", "id": "d1", "subject": _PATIENT, "status": "current",
     "type": {"coding": [{"code": "11506-3"}]}, "date": "2020-01-01T15:00:00Z",
     "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
     "context": {"encounter": [{"reference": "Encounter/e1"}]}},
]


def _string_paths(node, keys, path=()):
    """Paths to every string under one of `keys` (codes and references)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in keys and isinstance(v, str):
                yield path + (k,)
            yield from _string_paths(v, keys, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _string_paths(v, keys, path + (i,))


def blanked_codes_and_references(blank: str):
    """`_FULL` with one code or reference set to `blank`, for each code and reference the "fast"
    check reads in every resource type the compact reader takes: the damaged resource comes
    twice, the second time read from the reader's tables (a concept or reference seen before)."""
    for i, resource in enumerate(_FULL):
        for path in _string_paths(resource, {"code", "reference"}):
            bad = copy.deepcopy(resource)
            node = bad
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = blank
            yield _FULL[:i] + [bad, bad] + _FULL[i:]


@pytest.mark.parametrize("blank", [" ", "\u00a0\t", "\u3000"])
def test_white_space_codes_and_references_read_the_same_both_ways(tmp_path, blank):
    """Each code and reference set to white space only, once each, among resources that read cleanly."""
    n = 0
    for n, resources in enumerate(blanked_codes_and_references(blank), 1):
        out = tmp_path / f"r{n}.ndjson"
        out.write_text("".join(json.dumps(r, ensure_ascii=bool(n % 2)) + "\n" for r in resources))
        _assert_same(out)
    assert n >= 25
