"""Attacks on the running service (waitress on a loopback port, called over HTTP): bad inputs
answered 400, the EHR's token kept to the FHIR servers on the allow-list whatever a URL looks
like, hostile FHIR servers (slow, huge, chatty, redirecting) kept within a deadline and a
size cap, and nothing a foreign server says relayed to the caller or the logs."""
from __future__ import annotations

import json
import logging
import socket
import time
from contextlib import contextmanager

import psutil
import pytest
import requests

from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.config import Settings
from tests.hostile_http import Answer, HostileServer

pytestmark = pytest.mark.integration
MARKER = "UPSTREAM-SECRET-7f3a"


@pytest.fixture(scope="module")
def models(demo_models):
    return demo_models


@contextmanager
def service(models, **changes):
    from fhir_assist.commands.demo import running_service
    settings = Settings(**{"host": "127.0.0.1", "port": 0, "no_auth": True, "evidence": False, **changes})
    with running_service(settings, models=models) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def live(models):
    with service(models) as base_url:
        yield base_url


@pytest.fixture()
def hostile():
    server = HostileServer()
    yield server
    server.close()


def body_for(hook_cohort, service_id, index=0, **options):
    by_patient, usable = hook_cohort
    pid = usable[index % len(usable)]
    return build_request(BY_ID[service_id], by_patient[pid], pid, **options)


def post(base_url, service_id, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = kwargs.pop("headers", {"Content-Type": "application/json"})
    return requests.post(f"{base_url}/cds-services/{service_id}", data=data, headers=headers, timeout=60,
                         **kwargs)


def assert_clean_4xx(response, status=400):
    assert response.status_code == status, response.text[:400]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["details"]["text"]
    assert "Traceback" not in response.text
    return body["issue"][0]


# --------------------------------------------------------------- bad inputs → 400
SIGN = "medication-change-order-select"
VIEW = "medication-change-patient-view"


def _set(path, value):
    def edit(body):
        target = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return edit


def _drop(path):
    def edit(body):
        target = body
        for part in path[:-1]:
            target = target[part]
        target.pop(path[-1])
    return edit


AUTH = {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "s"}
BAD_INPUTS = [
    ("fhirServer null", VIEW, _set(["fhirServer"], None), "fhirServer"),
    ("fhirAuthorization null", VIEW, _set(["fhirAuthorization"], None), "fhirAuthorization"),
    ("fhirAuthorization without subject", VIEW,
     lambda b: b.update(fhirServer="https://ehr.example.org/fhir",
                        fhirAuthorization={k: v for k, v in AUTH.items() if k != "subject"}),
     "fhirAuthorization.subject"),
    ("fhirAuthorization without scope", VIEW,
     lambda b: b.update(fhirServer="https://ehr.example.org/fhir",
                        fhirAuthorization={k: v for k, v in AUTH.items() if k != "scope"}),
     "fhirAuthorization.scope"),
    ("expires_in a string", VIEW,
     lambda b: b.update(fhirServer="https://ehr.example.org/fhir", fhirAuthorization={**AUTH, "expires_in": "300"}),
     "fhirAuthorization.expires_in"),
    ("scope a list", VIEW,
     lambda b: b.update(fhirServer="https://ehr.example.org/fhir", fhirAuthorization={**AUTH, "scope": ["a"]}),
     "fhirAuthorization.scope"),
    ("patientId with NUL", VIEW, _set(["context", "patientId"], "p\x001"), "context.patientId"),
    ("patientId lone surrogate", VIEW, _set(["context", "patientId"], "p\ud800"), "context.patientId"),
    ("patientId with space and quote", VIEW, _set(["context", "patientId"], "p 1'"), "context.patientId"),
    ("patientId a reference", VIEW, _set(["context", "patientId"], "Patient/123"), "context.patientId"),
    ("encounterId with space", "coding-suggestions-encounter-discharge",
     _set(["context", "encounterId"], "e 1"), "context.encounterId"),
    ("userId with quote", VIEW, _set(["context", "userId"], "Practitioner/x'"), "context.userId"),
    ("userId a bare id", VIEW, _set(["context", "userId"], "123"), "context.userId"),
    ("draftOrders empty entry", SIGN, lambda b: b["context"]["draftOrders"]["entry"].append({}),
     "context.draftOrders.entry"),
    ("draftOrders entry without resource", SIGN,
     lambda b: b["context"]["draftOrders"]["entry"].append({"fullUrl": "urn:uuid:x"}), "context.draftOrders.entry"),
    ("selection not in draftOrders", SIGN, _set(["context", "selections"], ["MedicationRequest/not-a-draft"]),
     "context.selections[0]"),
    ("Condition under the patient key", VIEW,
     lambda b: b["prefetch"].update(patient={"resourceType": "Condition", "id": "c1"}), "prefetch.patient"),
    ("another patient under the patient key", VIEW,
     lambda b: b["prefetch"]["patient"].update(id="someone-else"), "prefetch.patient"),
    ("collection where a search was asked", VIEW, _set(["prefetch", "encounters", "type"], "collection"),
     "prefetch.encounters"),
    ("Bundle.type a number", VIEW, _set(["prefetch", "conditions", "type"], 7), "prefetch.conditions"),
    ("Bundle.total a string", VIEW, _set(["prefetch", "conditions", "total"], "3"), "prefetch.conditions.total"),
    ("meta.lastUpdated not an instant", VIEW,
     _set(["prefetch", "patient", "meta"], {"lastUpdated": "yesterday"}), "prefetch.patient.meta.lastUpdated"),
    ("meta.lastUpdated without zone", VIEW,
     lambda b: b["prefetch"]["encounters"]["entry"][0]["resource"].update(meta={"lastUpdated": "2026-01-01T10:00:00"}),
     "prefetch.encounters.entry[0].resource.meta.lastUpdated"),
    ("meta.lastUpdated on a day the calendar lacks", VIEW,
     _set(["prefetch", "patient", "meta"], {"lastUpdated": "2026-02-31T10:00:00Z"}), "prefetch.patient.meta.lastUpdated"),
    ("hookInstance with a newline", VIEW, _set(["hookInstance"], "abc\nINFO forged log line"), "hookInstance"),
    ("fhirServer with dot segments", VIEW, _set(["fhirServer"], "https://ehr.example.org/fhir/../admin"),
     "fhirServer"),
]


@pytest.mark.parametrize("name, service_id, edit, expression", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_answered_400_naming_the_field(live, hook_cohort, name, service_id, edit, expression):
    body = body_for(hook_cohort, service_id)
    edit(body)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    issue = assert_clean_4xx(post(live, service_id, raw))
    assert any(e.startswith(expression) for e in issue.get("expression", [])), issue


def test_wrong_content_type_and_deep_nesting_are_400(live, hook_cohort):
    body = json.dumps(body_for(hook_cohort, VIEW))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        issue = assert_clean_4xx(post(live, VIEW, body, headers={"Content-Type": content_type}))
        assert "application/json" in issue["details"]["text"]
    for depth in (1000, 100_000):
        deep = '{"hook": "patient-view", "x": ' + "[" * depth + "]" * depth + "}"
        assert_clean_4xx(post(live, VIEW, deep))
        deep_feedback = '{"feedback": ' + "[" * depth + "]" * depth + "}"
        response = requests.post(f"{live}/cds-services/{VIEW}/feedback", data=deep_feedback,
                                 headers={"Content-Type": "application/json"}, timeout=30)
        assert_clean_4xx(response)


def test_reading_feedback_with_an_ehr_call_is_405(live):
    response = requests.get(f"{live}/cds-services/{VIEW}/feedback", timeout=10)
    assert_clean_4xx(response, 405)
    # The admin listing exists only with an admin credential configured.
    assert requests.get(f"{live}/admin/feedback?tenant=default", timeout=10).status_code == 404


def test_oversized_body_is_refused_by_the_server_before_it_is_read(models):
    with service(models, max_request_mb=1) as base_url:
        host, port = base_url.rsplit("//", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(f"POST /cds-services/{VIEW} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: 900000000\r\n\r\n".encode())
            answer = sock.recv(200).decode(errors="replace")
            assert answer.startswith("HTTP/1.1 413"), answer
            assert time.monotonic() - started < 5



def test_a_prefetch_over_the_resource_cap_is_413_before_it_is_read(models, hook_cohort):
    body = body_for(hook_cohort, VIEW)
    held = sum(len(v.get("entry") or []) if isinstance(v, dict) and v.get("resourceType") == "Bundle"
               else v is not None for v in body["prefetch"].values())
    with service(models, max_prefetch_resources=held - 1) as base_url:
        issue = assert_clean_4xx(post(base_url, VIEW, body), 413)
        assert f"holds {held} resources" in issue["details"]["text"] and "MAX_PREFETCH_RESOURCES" in issue["details"]["text"]
    with service(models, max_prefetch_resources=held) as base_url:
        assert post(base_url, VIEW, body).status_code == 200


# ------------------------------------------------------- whose server gets the token
def test_the_ehr_token_is_never_sent_to_a_server_not_on_the_allow_list(models, hook_cohort, hostile):
    hostile.route("/", Answer(500, f'{{"resourceType":"OperationOutcome","issue":[{{"severity":"error",'
                                   f'"code":"exception","diagnostics":"{MARKER}"}}]}}'.encode()))
    body = body_for(hook_cohort, VIEW, prefetch=False, fhir_server=f"{hostile.origin}/fhir",
                    access_token="ehr-token-for-its-own-server")
    # Nothing configured: prefetch-only, and a clear 412 when the prefetch is missing.
    with service(models) as base_url:
        issue = assert_clean_4xx(post(base_url, VIEW, body), 412)
        assert "may call" in issue["details"]["text"]
    # Another server configured: still not this one.
    with service(models, allowed_fhir_servers=("https://ehr.example.org/fhir",),
                 fhir_base_url="https://fhir.example.org/R4") as base_url:
        assert_clean_4xx(post(base_url, VIEW, body), 412)
        complete = body_for(hook_cohort, VIEW, fhir_server=f"{hostile.origin}/fhir", access_token="t")
        assert post(base_url, VIEW, complete).status_code == 200       # answered from the prefetch
    assert hostile.seen == [], "the service contacted a server that is not on its allow-list"


def test_error_bodies_and_logs_never_carry_upstream_text(models, hook_cohort, hostile, caplog):
    hostile.route("/fhir", Answer(500, f'{{"resourceType":"OperationOutcome","issue":[{{"severity":"error",'
                                       f'"code":"exception","diagnostics":"{MARKER}"}}]}}'.encode()))
    body = body_for(hook_cohort, VIEW, prefetch=False, fhir_server=f"{hostile.origin}/fhir", access_token="t")
    with caplog.at_level(logging.DEBUG, logger="fhir_assist"):
        with service(models, allowed_fhir_servers=(f"{hostile.origin}/fhir",), fhir_timeout=2) as base_url:
            response = post(base_url, VIEW, body)
    assert_clean_4xx(response, 412)
    assert MARKER not in response.text
    assert hostile.seen, "the allowed server was asked"
    leaked = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and MARKER in r.getMessage()]
    assert not leaked, leaked


@pytest.mark.parametrize("link", [
    "HTTP://{foreign}/fhir/Condition?page=2",
    " http://{foreign}/fhir/Condition?page=2",
    "\thttp://{foreign}/fhir/Condition?page=2",
    "//{foreign}/fhir/Condition?page=2",
    "{allowed_origin}/fhir/../private/Condition?page=2",
    "{allowed_origin}/fhir/%2e%2e/private/Condition?page=2",
    "{allowed_origin}/fhir-other/Condition?page=2",
    "http:\\\\{foreign}/fhir/Condition",
])
def test_next_links_cannot_leave_the_allowed_server(models, hook_cohort, link):
    allowed, foreign = HostileServer(), HostileServer()
    try:
        url = link.format(foreign=foreign.origin.split("//")[1], allowed_origin=allowed.origin)
        # A next link in a prefetch Bundle, and one in a search page the allowed server answers.
        page = {"resourceType": "Bundle", "type": "searchset", "entry": [], "link": [{"relation": "next", "url": url}]}
        allowed.route("/fhir", Answer(200, json.dumps(page).encode()))
        body = body_for(hook_cohort, VIEW, fhir_server=f"{allowed.origin}/fhir", access_token="t")
        body["prefetch"]["conditions"]["link"] = [{"relation": "next", "url": url}]
        del body["prefetch"]["procedures"]                   # fetched: its pages carry the link too
        with service(models, allowed_fhir_servers=(f"{allowed.origin}/fhir",), fhir_timeout=2) as base_url:
            response = post(base_url, VIEW, body)
        assert response.status_code == 200, response.text[:300]
        assert foreign.seen == []
        assert all(s.path.startswith("/fhir/") for s in allowed.seen), [s.path for s in allowed.seen]
    finally:
        allowed.close()
        foreign.close()


def test_redirects_are_not_followed(models, hook_cohort):
    allowed, foreign = HostileServer(), HostileServer()
    try:
        allowed.route("/fhir", Answer(302, b"", {"Location": f"{foreign.origin}/fhir/Encounter"}))
        body = body_for(hook_cohort, VIEW, prefetch=False, fhir_server=f"{allowed.origin}/fhir", access_token="t")
        with service(models, allowed_fhir_servers=(f"{allowed.origin}/fhir",), fhir_timeout=2) as base_url:
            assert_clean_4xx(post(base_url, VIEW, body), 412)
        assert allowed.seen and foreign.seen == []
    finally:
        allowed.close()
        foreign.close()


# ------------------------------------------------------ slow and huge FHIR servers
def test_a_slow_drip_server_cannot_hold_a_call_past_its_deadline(models, hook_cohort, hostile):
    page = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}).encode()
    hostile.route("/fhir", Answer(200, page, drip_s=0.5))      # each byte well inside the read timeout
    # One key to fetch (the rest prefetched): the fetch runs on the request's own thread.
    body = body_for(hook_cohort, VIEW, fhir_server=f"{hostile.origin}/fhir", access_token="t")
    del body["prefetch"]["encounters"]
    with service(models, allowed_fhir_servers=(f"{hostile.origin}/fhir",), fhir_timeout=1) as base_url:
        started = time.monotonic()
        response = post(base_url, VIEW, body)
        elapsed = time.monotonic() - started
    assert_clean_4xx(response, 412)
    assert elapsed < 8, f"the call took {elapsed:.1f} s (deadline 3 s)"


def test_a_huge_fhir_answer_is_cut_off_at_the_size_cap(models, hook_cohort, hostile):
    chunk = b" " * (1024 * 1024)
    hostile.route("/fhir", Answer(200, chunk, repeat=200))       # 200 MB of nothing
    body = body_for(hook_cohort, VIEW, prefetch=False, fhir_server=f"{hostile.origin}/fhir", access_token="t")
    process = psutil.Process()
    with service(models, allowed_fhir_servers=(f"{hostile.origin}/fhir",), fhir_max_response_mb=4,
                 fhir_timeout=5) as base_url:
        before = process.memory_info().rss
        response = post(base_url, VIEW, body)
        grown = process.memory_info().rss - before
    assert_clean_4xx(response, 412)
    assert grown < 100 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MB"


def test_metric_labels_stay_bounded_whatever_the_caller_sends(live, hook_cohort):
    for i in range(5):
        body = body_for(hook_cohort, VIEW, i)
        marker = f"urn:evil:{i}:{time.time_ns()}"
        for entry in body["prefetch"]["conditions"]["entry"]:
            entry["resource"]["code"]["coding"][0]["system"] = marker
        assert post(live, VIEW, body).status_code == 200
        requests.request("FROBNICATE", f"{live}/cds-services", timeout=10)
    metrics = requests.get(f"{live}/metrics", timeout=10).text
    assert "urn:evil" not in metrics and "FROBNICATE" not in metrics


def test_feedback_with_malformed_accepted_suggestions_on_an_override_is_400(live):
    # Found by tests/test_fuzz.py: it answered 500 (TypeError) before.
    for accepted in (7, "x", [1], [{"id": 3}], {"id": "a"}):
        body = {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z",
                              "acceptedSuggestions": accepted}]}
        response = requests.post(f"{live}/cds-services/{VIEW}/feedback", json=body, timeout=10)
        issue = assert_clean_4xx(response)
        assert "feedback[0].acceptedSuggestions" in issue["expression"]
