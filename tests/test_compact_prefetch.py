"""Hook bodies read through the compact path (`cds.compact_call` + `adapter.compact_prefetch`)
against the ordinary path (orjson dicts, depth walk, "fast" validation, `TimelineBuilder.add`).

For every body both paths must give the same answer: the same 4xx error (status, code,
message, expression), or the same patient data (timelines with every field, report,
resources, draft orders, notes and unknown codes). Bodies: the example hooks, the messy
prefetch and Bundles, requests built from a synthetic cohort, and those bodies damaged
at random (resources, Bundle fields, entries, bytes, nesting).
"""
from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import pytest
from werkzeug.exceptions import HTTPException

from fhir_assist.cds import create_app
from fhir_assist.cds import routes
from fhir_assist.cds.catalog import BY_ID, SERVICES
from fhir_assist.cds import compact_call
from fhir_assist.cds.compact_call import decode_body, shallow_enough
from fhir_assist.cds.errors import CdsError
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.cds.patient_data import load_patient_data
from fhir_assist.cds.request_checks import MAX_JSON_DEPTH, check_depth
from fhir_assist.config import Settings
from fhir_assist.store.memory import MemoryStore

from .test_compact_reader import _FULL, _canonical, _damage, _report, blanked_codes_and_references

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples" / "hooks").glob("*.json") if p.name != "patient-bundle.json")
MESSY = Path(__file__).parent / "data" / "messy"


@pytest.fixture(scope="module")
def app(demo_models):
    return create_app(Settings(no_auth=True), store=MemoryStore(), models=demo_models)


def _read(app, service_id: str, raw: bytes, compact: bool):
    """(status, outcome) of a refused body, else (200, the patient data as plain values)."""
    app.config[routes.COMPACT_BODIES] = compact
    settings = app.extensions["fhir_assist"].settings
    try:
        with app.test_request_context(f"/cds-services/{service_id}", method="POST", data=raw,
                                      content_type="application/json"):
            call = routes._read_hook_call(BY_ID[service_id], settings)
            assert (call.compact is not None) == (compact and decode_body(raw) is not None)
            routes._check_prefetch_size(call.prefetch, settings.max_prefetch_resources)
            data = load_patient_data(call, fetcher=None, executor=None, deadline_s=5.0)
    except CdsError as exc:
        outcome = exc.outcome()
        outcome.pop("id", None)         # a fresh id per answer
        return exc.status, outcome
    except HTTPException as exc:
        return exc.code, exc.description
    finally:
        app.config[routes.COMPACT_BODIES] = True
    gathered = data.gathered
    return 200, {
        "timeline": _canonical(data.timeline), "visit": _canonical(data.visit),
        "history": _canonical(data.history), "report": _report(data.report),
        "resources": list(data.resources), "resources_again": list(data.resources),
        "medications": data.resources_of("Medication", "MedicationRequest"),
        "drafts": data.drafts, "encounter": data.encounter_id, "notes": data.notes_about_data(),
        "unknown": data.unknown_codes(), "gathered": (gathered.from_prefetch, gathered.missing,
                                                      gathered.partial, gathered.fetched),
    }


def _same(app, service_id: str, raw: bytes) -> tuple:
    ordinary = _read(app, service_id, raw, compact=False)
    compact = _read(app, service_id, raw, compact=True)
    assert compact == ordinary
    return ordinary


def _dump(body) -> bytes:
    return json.dumps(body).encode()


# ------------------------------------------------------------ clean bodies
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_hooks_read_the_same_both_ways(app, path):
    raw = path.read_bytes()
    service_id = path.name.split(".")[0]
    status, _ = _same(app, service_id, raw)
    if "prefetch" in json.loads(raw):
        assert status == 200
        assert decode_body(raw) is not None, "a clean example must take the compact path"


def test_messy_prefetch_and_bundles_read_the_same(app):
    prefetch = json.loads((MESSY / "prefetch.json").read_text())
    patient = prefetch["patient"]["id"]
    body = {"hook": "patient-view", "hookInstance": "b6a7f1c2-0000-4000-8000-000000000001",
            "context": {"userId": "Practitioner/1", "patientId": patient}, "prefetch": prefetch}
    _same(app, "coding-suggestions-patient-view", _dump(body))
    for name in ("collection", "searchset", "transaction"):
        bundle = json.loads((MESSY / "bundles" / f"{name}.json").read_text())
        for key in ("conditions", "encounters", "medications"):
            changed = copy.deepcopy(body)
            changed["prefetch"][key] = bundle
            _same(app, "coding-suggestions-patient-view", _dump(changed))


@pytest.fixture(scope="module")
def cohort_bodies(hook_cohort):
    by_patient, usable = hook_cohort
    out = []
    for pid in usable[:6]:
        for entry in SERVICES:
            body = build_request(entry, by_patient[pid], pid)
            out.append((entry.id, body))
    return out


def test_cohort_requests_read_the_same_and_compact(app, cohort_bodies):
    compact = 0
    for service_id, body in cohort_bodies:
        raw = _dump(body)
        assert _same(app, service_id, raw)[0] == 200
        compact += decode_body(raw) is not None
    assert compact == len(cohort_bodies)


# ------------------------------------------------------------ damage
_OTHER = {"resourceType": "Observation", "id": "obs1", "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
          "subject": {"reference": "Patient/someone-else"}, "valueQuantity": {"value": 7}}


def _deep(levels: int):
    value: object = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def _damage_envelope(body: dict, rng: random.Random) -> dict:
    """Damage where the compact path declines or checks: Bundle fields, entries, ids, nesting."""
    body = copy.deepcopy(body)
    bundles = [v for v in (body.get("prefetch") or {}).values() if isinstance(v, dict) and v.get("entry")]
    if not bundles:
        return body
    bundle = rng.choice(bundles)
    entries = bundle["entry"]
    entry = rng.choice(entries)
    resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
    roll = rng.randrange(26)
    if roll == 0:
        entry["fullUrl"] = "urn:uuid:" + str(rng.randrange(10**6))
    elif roll == 1:
        resource.pop("id", None)
    elif roll == 2:
        resource.setdefault("meta", {})["lastUpdated"] = rng.choice(["2020-01-01", "2020-01-01T10:00:00Z", 5])
    elif roll == 3:
        bundle["link"] = rng.choice([[{"relation": "next", "url": "http://x/next"}],
                                     [{"relation": "self", "url": "http://x/self?patient=1"}], 5, None])
    elif roll == 4:
        entry["resource"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _OTHER}]}
    elif roll == 5:
        entries.append(rng.choice([None, 5, "x", [], {}, {"resource": None}, {"resource": "x"}]))
    elif roll == 6:
        entries.append(copy.deepcopy(entry))                       # a repeated resource
    elif roll == 7:
        entries.append({"resource": copy.deepcopy(_OTHER)})         # a type without a struct
    elif roll == 8:
        resource["subject"] = {"reference": "Patient/someone-else"}
    elif roll == 9:
        resource["patient"] = rng.choice([{"reference": "Patient/someone-else"}, "x", None])
        resource.pop("subject", None)
    elif roll == 10:
        bundle["total"] = rng.choice(["3", -1, 2.0, True, None, 10**30])
    elif roll == 11:
        bundle["type"] = rng.choice([None, 5, "collection", "transaction"])
    elif roll == 12:
        resource["extension"] = [{"url": "x", "valueString": "a [bracket] {inside"}]
    elif roll == 13:
        resource["extension"] = [{"url": "x", "valueInteger": rng.choice([10**19, -(10**19), 2**63, 7])}]
    elif roll == 14:
        resource["extension"] = _deep(rng.choice([MAX_JSON_DEPTH - 8, MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH,
                                                  MAX_JSON_DEPTH + 5, 300]))
    elif roll == 15:
        entry["search"] = {"mode": rng.choice(["outcome", "match", 5])}
    elif roll == 16:
        resource["resourceType"] = rng.choice([None, 5, "NotAType", "OperationOutcome", ""])
    elif roll == 17:
        resource["id"] = rng.choice(["", "bad id", "a" * 65, 5, None, "ok.id-1"])
    elif roll == 18:
        if resource.get("resourceType") == "Encounter":
            resource["diagnosis"] = [{"condition": {"reference": "Condition/x"}, "rank": rng.choice(
                [1, 0, 2**63, 2**70, 1.0, "1"])}]
    elif roll == 19:
        entry["resource"] = None
    elif roll == 20:
        body["context"]["extra"] = rng.choice([10**20, [1, [2, [3]]], "x\u0000y"])
    elif roll == 21:
        body["prefetch"][rng.choice(list(body["prefetch"]))] = rng.choice(
            [None, [], "x", {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "nope"}]}])
    elif roll == 22:
        resource["meta"] = rng.choice([None, "x", {"versionId": "2"}, {"tag": [{"system": "s", "code": 10**21}]}])
    elif roll == 23:
        resource["text"] = {"status": "generated", "div": "<div>\\\"quoted\\\" [x] {y}</div>"}
    elif roll == 24:
        bundle["entry"] = rng.choice([None, {}, "x", []])
    else:
        body.setdefault("fhirAuthorization", {"access_token": "t", "token_type": "Bearer",
                                              "expires_in": rng.choice([300, 10**20, "300"]),
                                              "scope": "patient/*.read", "subject": "x"})
    return body


def _damage_resources(body: dict, rng: random.Random) -> dict:
    body = copy.deepcopy(body)
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        for entry in value.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict) and rng.random() < 0.08:
                entry["resource"] = _damage(entry["resource"], rng)
    return body


def _damage_bytes(raw: bytes, rng: random.Random) -> bytes:
    roll = rng.randrange(4)
    at = rng.randrange(len(raw))
    if roll == 0:
        return raw[:at]
    if roll == 1:
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1:]
    if roll == 2:
        return raw[:at] + rng.choice([b"[", b"]", b"{", b"}", b'"', b"\\", b",", b"\xff", b"\\u", b"NaN"]) + raw[at:]
    return raw[:at] + raw[at + rng.randrange(1, 40):]


def test_randomly_damaged_bodies_read_the_same(app, cohort_bodies):
    rng = random.Random(20261203)
    examples = [(p.name.split(".")[0], json.loads(p.read_bytes())) for p in EXAMPLES]
    sources = [(sid, b) for sid, b in examples + cohort_bodies if "prefetch" in b]
    outcomes = {}
    for i in range(700):
        service_id, body = rng.choice(sources)
        kind = i % 4
        if kind == 0:
            raw = _dump(_damage_envelope(body, rng))
        elif kind == 1:
            raw = _dump(_damage_resources(body, rng))
        elif kind == 2:
            raw = _dump(_damage_envelope(_damage_resources(body, rng), rng))
        else:
            raw = _damage_bytes(_dump(body), rng)
        status = _same(app, service_id, raw)[0]
        outcomes[status] = outcomes.get(status, 0) + 1
    # the damage must reach both kinds of answer, else this test compares too little
    assert outcomes.get(200, 0) > 100 and outcomes.get(400, 0) > 100, outcomes


@pytest.mark.parametrize("blank", [" ", "\u00a0\t", "\u3000"])
def test_white_space_codes_and_references_read_the_same_both_ways(app, blank):
    """Each code and reference set to white space only, once each, in a prefetched Bundle of
    resources that read cleanly: the compact path decodes it and its reader declines it, so the
    ordinary path names the same error (a 400 where the "fast" check refuses it)."""
    def body(resources: list, ascii_only: bool) -> bytes:
        searchset = {"resourceType": "Bundle", "type": "searchset"}
        raw = json.dumps({"hook": "patient-view", "hookInstance": "b6a7f1c2-0000-4000-8000-000000000002",
                          "context": {"userId": "Practitioner/1", "patientId": "p1"},
                          "prefetch": {"patient": _FULL[0], "medications": searchset, "encounters": searchset,
                                       "conditions": {**searchset, "entry": [{"resource": r} for r in resources]}}},
                         ensure_ascii=ascii_only).encode()
        assert decode_body(raw) is not None
        return raw

    assert _same(app, "coding-suggestions-patient-view", body(_FULL, True))[0] == 200
    n, refused = 0, 0
    for n, resources in enumerate(blanked_codes_and_references(blank), 1):
        refused += _same(app, "coding-suggestions-patient-view", body(resources, ascii_only=bool(n % 2)))[0] == 400
    assert n >= 25 and refused >= 20, (n, refused)


# ------------------------------------------------------------ nesting
@pytest.mark.parametrize("piece", [None, 1, 2, 3, 7])
def test_shallow_enough_agrees_with_the_depth_walk(monkeypatch, piece):
    """Exact on valid JSON, strings full of brackets, quotes and backslashes included; also
    when the body is scanned in pieces so small that they cut every run of escapes."""
    if piece is not None:
        monkeypatch.setattr(compact_call, "_PIECE", piece)
    rng = random.Random(5)
    pieces = ["[", "]", "{", "}", '"', "\\", "\\\\", '\\"', "x", ",", ":", '"a":', "1", "\u00e9", "é"]
    answers = set()
    for _ in range(3000):
        levels = rng.randint(1, MAX_JSON_DEPTH + 3)
        value: object = rng.choice(["s", 1, None, "a]b[{", '\\"[', [], {}])
        for _ in range(levels - 1):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
            value = {"k": value, text: text} if rng.random() < 0.5 else [text, value, text]
        raw = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        try:
            check_depth(value)
            deep = False
        except CdsError:
            deep = True
        assert shallow_enough(raw) == (not deep), raw[:200]
        answers.add(deep)
    assert answers == {True, False}


@pytest.mark.parametrize("piece", [1, 2, 5])
def test_utf8_checked_in_pieces_as_whole(monkeypatch, piece):
    """Multi-byte characters cut between pieces still read; invalid UTF-8 anywhere declines."""
    monkeypatch.setattr(compact_call, "_PIECE", piece)
    good = json.dumps({"text": "é€😀 [naïve]"}, ensure_ascii=False).encode()
    assert compact_call._text_as_orjson_reads_it(good)
    for cut in range(len(good)):
        bad = good[:cut] + b"\xff" + good[cut:]
        assert not compact_call._text_as_orjson_reads_it(bad)
    euro = "€".encode()
    assert not compact_call._text_as_orjson_reads_it(good.replace(euro, euro[:2]))  # a truncated sequence


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_inside_a_prefetched_resource_is_a_400(app, levels):
    body = json.loads(EXAMPLES[0].read_bytes())
    value = next(v for v in body["prefetch"].values() if isinstance(v, dict) and v.get("entry"))
    raw = _dump({**body, "prefetch": {**body["prefetch"]}})
    inner = b"[" * (levels - 4) + b"]" * (levels - 4)
    marker = json.dumps(value["entry"][0]["resource"]["id"]).encode()
    raw = raw.replace(b'"id": ' + marker, b'"extension": ' + inner + b', "id": ' + marker, 1)
    assert raw.count(b"extension") == 1
    status, outcome = _same(app, EXAMPLES[0].name.split(".")[0], raw)
    assert status == 400 and outcome["issue"][0]["code"] == "too-costly"
    answer = app.test_client().post(f"/cds-services/{EXAMPLES[0].name.split('.')[0]}", data=raw,
                                    content_type="application/json")
    assert answer.status_code == 400


# ------------------------------------------------------------ whole answers
def _without_ids(body):
    """Uuids and the current time (a card's Conditions say when they were suggested, to the
    second: two calls under load can fall in different seconds) out of an answer."""
    text = re.sub(r'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '"uuid"', json.dumps(body))
    return json.loads(re.sub(r'"(recordedDate|authoredOn)": "[^"]*"', r'"\1": "now"', text))


@pytest.mark.parametrize("path", [p for p in EXAMPLES if "no-prefetch" not in p.name], ids=lambda p: p.stem)
def test_whole_answers_are_the_same_both_ways(demo_models, path):
    answers = []
    for compact in (False, True):
        fresh = create_app(Settings(no_auth=True), store=MemoryStore(), models=demo_models)
        fresh.config[routes.COMPACT_BODIES] = compact
        response = fresh.test_client().post(f"/cds-services/{path.name.split('.')[0]}", data=path.read_bytes(),
                                            content_type="application/json")
        assert response.status_code == 200
        answers.append(_without_ids(response.get_json()))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("compact", [False, True])
def test_a_malformed_bundle_link_is_no_500(app, compact):
    """`Bundle.link` that is not a list was iterated as one (TypeError: 500); it is no next page."""
    body = json.loads(EXAMPLES[0].read_bytes())
    next(v for v in body["prefetch"].values() if v.get("resourceType") == "Bundle")["link"] = 5
    app.config[routes.COMPACT_BODIES] = compact
    try:
        answer = app.test_client().post(f"/cds-services/{EXAMPLES[0].name.split('.')[0]}", data=_dump(body),
                                        content_type="application/json")
    finally:
        app.config[routes.COMPACT_BODIES] = True
    assert answer.status_code == 200
