"""Generated requests against the service: schemathesis from the /openapi.json the service
publishes (valid and invalid bodies for every operation), and hypothesis mutations of real
hook requests, feedback bodies and prefetch payloads. Invariant for every one: no 5xx, no
traceback in the body, errors as OperationOutcomes, and memory that stays bounded.

FUZZ_SCALE (default 1) multiplies the example counts; at 1 the module sends over 10,000
requests, which the last test checks."""
from __future__ import annotations

import copy
import json
import os

import psutil
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_assist.cds import create_app
from fhir_assist.cds.catalog import BY_ID, SERVICES
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.config import Settings
from fhir_assist.store import MemoryStore

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
SENT = {"requests": 0, "5xx": 0}
RSS = {}


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


@pytest.fixture(scope="module")
def app(demo_models, hook_cohort):
    # Evidence is the slow part of a coding answer and is not what is fuzzed here.
    app = create_app(Settings(no_auth=True, evidence=False), store=MemoryStore(), models=demo_models)
    by_patient, usable = hook_cohort
    for entry in SERVICES:      # warm up every model before taking the memory baseline
        body = build_request(entry, by_patient[usable[0]], usable[0])
        assert app.test_client().post(f"/cds-services/{entry.id}", json=body).status_code == 200
    RSS.setdefault("start", psutil.Process().memory_info().rss)
    return app


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def check(status: int, text: str, content_type: str | None) -> None:
    SENT["requests"] += 1
    if status >= 500 and status != 503:
        SENT["5xx"] += 1
    assert status < 500 or status == 503, text[:500]
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    if status >= 400 and (content_type or "").startswith("application/json"):
        body = json.loads(text)
        assert body.get("resourceType") == "OperationOutcome" and body["issue"][0]["details"]["text"], text[:300]


# -------------------------------------------------------------- from the OpenAPI
@pytest.fixture(scope="module")
def operations(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in schema.get_all_operations())}


# (operation, valid or invalid inputs) → examples; operations without inputs have no invalid ones.
# Generating a case costs far more than answering it: each generated body is sent to every
# service id (its own first), so one case is up to five requests.
OPERATIONS = {("POST /cds-services/{service_id}", "positive"): 200,
              ("POST /cds-services/{service_id}", "negative"): 200,
              ("POST /cds-services/{service_id}/feedback", "positive"): 200,
              ("POST /cds-services/{service_id}/feedback", "negative"): 200,
              ("GET /cds-services", "positive"): 50, ("GET /healthz", "positive"): 20,
              ("GET /readyz", "positive"): 20,
              ("GET /admin/feedback", "positive"): 20, ("GET /admin/feedback", "negative"): 20,
              ("GET /admin/writebacks", "positive"): 20, ("GET /admin/writebacks", "negative"): 20}
SERVICE_IDS = [s.id for s in SERVICES]


@pytest.mark.parametrize("name, mode", sorted(OPERATIONS))
def test_every_operation_of_the_published_description(operations, name, mode):
    generation = schemathesis.GenerationMode.POSITIVE if mode == "positive" else schemathesis.GenerationMode.NEGATIVE

    @given(case=operations[name].as_strategy(generation_mode=generation))
    @settings(FUZZ, max_examples=examples(OPERATIONS[name, mode]))
    def run(case):
        response = case.call()
        check(response.status_code, response.text, response.headers.get("Content-Type"))
        given_id = (case.path_parameters or {}).get("service_id")
        for other in SERVICE_IDS if given_id is not None else ():
            if other != given_id:
                case.path_parameters = {**case.path_parameters, "service_id": other}
                response = case.call()
                check(response.status_code, response.text, response.headers.get("Content-Type"))

    run()


def test_the_description_is_published(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.") and "/cds-services/{service_id}" in document["paths"]


def test_the_description_covers_every_route_with_its_credential(app, client):
    """Every route of the CDS Hooks service is described (so the fuzzer reaches it), and the
    admin functions say they take the admin credential, not an EHR's token. (The coder
    worklist's pages are a browser application, not part of this API.)"""
    document = client.get("/openapi.json").get_json()
    paths = document["paths"]
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("cds.") or rule.rule == "/":
            continue
        path = rule.rule.replace("<service_id>", "{service_id}")
        assert path in paths, f"{rule.rule} is not in /openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {rule.rule} is not in /openapi.json"
    schemes = document["components"]["securitySchemes"]
    assert schemes["admin"]["scheme"] == "bearer" and "bearerFormat" not in schemes["admin"]
    for path in ("/admin/feedback", "/admin/writebacks"):
        operation = paths[path]["get"]
        assert operation["security"] == [{"admin": []}]
        assert {"401", "403"} <= set(operation["responses"])
        tenant = next(p for p in operation["parameters"] if p["name"] == "tenant")
        assert tenant["required"] and tenant["in"] == "query"
        # without an admin credential configured the function is absent, whatever the token
        answer = client.get(f"{path}?tenant=t", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 404 and answer.get_json()["resourceType"] == "OperationOutcome"


# ------------------------------------------------- mutations of real requests
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _paths(value, prefix=()):
    """Every path into a JSON value (dict keys and list indexes)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            yield from _paths(child, prefix + (i,))


def _mutate(body, path, new, drop):
    out = copy.deepcopy(body)
    if not path:
        return new
    target = out
    for part in path[:-1]:
        target = target[part]
    if drop and isinstance(target, dict):
        target.pop(path[-1], None)
    else:
        target[path[-1]] = new
    return out


@pytest.fixture(scope="module")
def seeds(hook_cohort):
    by_patient, usable = hook_cohort
    out = {}
    for service_id in ("medication-change-order-select", "coding-suggestions-encounter-discharge",
                       "medication-change-patient-view"):
        body = build_request(BY_ID[service_id], by_patient[usable[0]], usable[0])
        for bundle in body.get("prefetch", {}).values():
            if isinstance(bundle, dict) and bundle.get("entry"):
                bundle["entry"] = bundle["entry"][:3]       # keep the mutation space small
        out[service_id] = (body, list(_paths(body)))
    return out


def _fuzz_mutations(client, seeds, data, service_ids, *, where=None):
    service_id = data.draw(st.sampled_from(service_ids))
    body, paths = seeds[service_id]
    if where:
        paths = [p for p in paths if p[:1] == (where,)]
    path = data.draw(st.sampled_from(paths))
    new = data.draw(JSON_VALUES)
    mutated = _mutate(body, path, new, data.draw(st.booleans()))
    response = client.post(f"/cds-services/{service_id}", data=json.dumps(mutated),
                           content_type="application/json")
    check(response.status_code, response.get_data(as_text=True), response.content_type)


@given(data=st.data())
@settings(FUZZ, max_examples=examples(800))
def test_mutated_hook_requests(client, seeds, data):
    _fuzz_mutations(client, seeds, data, sorted(seeds))


@given(data=st.data())
@settings(FUZZ, max_examples=examples(800))
def test_mutated_prefetch_payloads(client, seeds, data):
    _fuzz_mutations(client, seeds, data, ["medication-change-patient-view"], where="prefetch")


FEEDBACK_ITEM = st.fixed_dictionaries(
    {"card": st.one_of(st.uuids().map(str), JSON_VALUES),
     "outcome": st.sampled_from(["accepted", "overridden", "maybe", ""]) | JSON_VALUES},
    optional={"acceptedSuggestions": st.lists(st.fixed_dictionaries({"id": st.text(max_size=10)})) | JSON_VALUES,
              "overrideReason": st.fixed_dictionaries({}, optional={
                  "reason": st.fixed_dictionaries({"code": st.text(max_size=5), "system": st.text(max_size=10)}),
                  "userComment": st.text(max_size=30)}) | JSON_VALUES,
              "outcomeTimestamp": st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", ""]) | JSON_VALUES})


@given(body=st.fixed_dictionaries({"feedback": st.lists(FEEDBACK_ITEM, max_size=3) | JSON_VALUES}) | JSON_VALUES)
@settings(FUZZ, max_examples=examples(2000))
def test_feedback_bodies(client, body):
    response = client.post("/cds-services/medication-change-order-sign/feedback", data=json.dumps(body),
                           content_type="application/json")
    check(response.status_code, response.get_data(as_text=True), response.content_type)


@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
       content_type=st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain", ""]))
@settings(FUZZ, max_examples=examples(3000))
def test_raw_bodies(client, raw, content_type):
    response = client.post("/cds-services/medication-change-patient-view", data=raw, content_type=content_type)
    check(response.status_code, response.get_data(as_text=True), response.content_type)


def test_zz_enough_requests_no_5xx_and_bounded_memory():
    grown = psutil.Process().memory_info().rss - RSS.get("start", 0)
    print(f"\nfuzzing: {SENT['requests']} requests, {SENT['5xx']} answered 5xx, RSS grew {grown / 2**20:.0f} MB")
    assert SENT["5xx"] == 0
    if SCALE >= 1:
        assert SENT["requests"] >= 10_000
    assert grown < 400 * 2**20
