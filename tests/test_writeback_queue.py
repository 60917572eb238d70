"""Write-backs the FHIR server cannot take are queued and retried by the service: with the
real test FHIR server stopped and started again, and behind a fault proxy for the 5xx
answers and timeouts a real server does not produce on demand. After recovery each
suggested Condition exists exactly once; the card says the write-back is pending, and the
queue shows in /metrics and at GET /admin/writebacks (admin credential)."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from contextlib import contextmanager

import pytest
import requests

from fhir_assist.config import Settings
from fhir_assist.fhir_server import FhirServer
from fhir_assist.own_resources import is_our_suggestion
from tests.conftest import FHIR_SERVER_DIR, _stop_process, free_port, service_missing
from tests.hostile_http import Answer, HostileServer
from tests.test_faults import DISCHARGE, load_patient, request_for

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-for-the-queue-tests"
SLOW = 2.0                        # the service's FHIR timeout in these tests (seconds)


@contextmanager
def service(models, **changes):
    from fhir_assist.commands.demo import running_service
    settings = Settings(**{"host": "127.0.0.1", "port": 0, "no_auth": True, "evidence": False,
                           "write_back_precision": 0.0, "write_back_retry_s": 0.5, "fhir_timeout": SLOW,
                           "admin_token_sha256": hashlib.sha256(ADMIN.encode()).hexdigest(), **changes})
    with running_service(settings, models=models) as base_url:
        yield base_url


def discharge(base_url, body) -> str:
    response = requests.post(f"{base_url}/cds-services/{DISCHARGE}", json=body, timeout=120)
    assert response.status_code == 200, response.text[:300]
    return response.json()["cards"][0]["detail"]


def queue(base_url, tenant="default") -> dict:
    response = requests.get(f"{base_url}/admin/writebacks", params={"tenant": tenant},
                            headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def wait_until_written(base_url, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        listing = queue(base_url)
        if not listing["pending"]:
            return listing
        assert time.monotonic() < deadline, f"still pending after {timeout:.0f} s: {listing}"
        time.sleep(0.5)


def our_codes(fhir_base_url, encounter) -> list[tuple[str, str]]:
    """Our Conditions on the encounter, picked here from all Conditions (the in-memory test server
    does not always find a Condition by an encounter search)."""
    with FhirServer(fhir_base_url) as fhir:
        found = fhir.search("Condition")
    ours = [c for c in found if is_our_suggestion(c)
            and (c.get("encounter") or {}).get("reference") == f"Encounter/{encounter}"]
    return [(c["code"]["coding"][0]["system"], c["code"]["coding"][0]["code"]) for c in ours]


def metric(base_url, name) -> float:
    text = requests.get(f"{base_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_5xx_and_timeouts_at_write_back_are_retried_once_the_server_recovers(demo_models, hook_cohort,
                                                                             fhir_base_url):
    by_patient, _ = hook_cohort
    body = request_for(hook_cohort, DISCHARGE, 3)
    pid, encounter = body["context"]["patientId"], body["context"]["encounterId"]
    load_patient(fhir_base_url, [r for r in by_patient[pid] if r["resourceType"] in ("Patient", "Encounter")])
    earlier = our_codes(fhir_base_url, encounter)          # the session's server: other tests' writes
    proxy = HostileServer(upstream=fhir_base_url)
    try:
        body["fhirServer"] = f"{proxy.origin}/fhir"
        proxy.route("/fhir", Answer(503, b'{"resourceType":"OperationOutcome","issue":[]}'))
        with service(demo_models, allowed_fhir_servers=(f"{proxy.origin}/fhir",)) as base_url:
            detail = discharge(base_url, body)
            assert "Write-back pending" in detail and "HTTP 503" in detail, detail
            (entry,) = queue(base_url)["pending"]
            assert entry["encounter"] == encounter and entry["codes"]
            discharge(base_url, body)                        # the EHR re-sends: still one entry
            assert len(queue(base_url)["pending"]) == 1
            # Now the server hangs (a timeout each try) before it comes back.
            proxy.routes.clear()
            proxy.route("/fhir", Answer(200, b"{}" * 8, drip_s=SLOW))
            deadline = time.monotonic() + 60
            while metric(base_url, 'fhir_assist_writeback_retries_total{outcome="failed"}') < 1:
                assert time.monotonic() < deadline, "no retry was tried while the server hung"
                time.sleep(0.5)
            assert our_codes(fhir_base_url, encounter) == earlier
            proxy.routes.clear()                              # recovered: no new call needed
            wait_until_written(base_url)
            codes = our_codes(fhir_base_url, encounter)
            assert set(codes) >= {tuple(c.split("|")) for c in entry["codes"]}
            assert metric(base_url, 'fhir_assist_writeback_retries_total{outcome="written"}') >= 1
            assert "recorded on the FHIR server" in discharge(base_url, body)     # and again: nothing new
    finally:
        proxy.close()
    codes = our_codes(fhir_base_url, encounter)
    assert codes and len(codes) == len(set(codes)), f"duplicates after recovery: {len(codes) - len(set(codes))}"


class RestartableFhirServer:
    """The test FHIR server (in memory) on a fixed loopback port, stopped and started again."""

    def __init__(self, tmp_path):
        self.node = shutil.which("node")
        if not self.node or not (FHIR_SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
            service_missing("the test FHIR server (node and its npm packages) is not installed")
        self.port = free_port()
        self.log = (tmp_path / "fhir.log").open("ab")
        self.proc = None
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.node, str(FHIR_SERVER_DIR / "server.mjs"), "--host", "127.0.0.1",
                                      "--port", str(self.port), "--quiet"], cwd=FHIR_SERVER_DIR,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.base_url}/metadata", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, "the FHIR server did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        _stop_process(self.proc)


def test_the_fhir_server_down_at_write_back_then_back_each_condition_once(demo_models, hook_cohort, tmp_path,
                                                                          redis_url):
    fhir = RestartableFhirServer(tmp_path)
    by_patient, _ = hook_cohort
    body = request_for(hook_cohort, DISCHARGE, 5)
    pid, encounter = body["context"]["patientId"], body["context"]["encounterId"]
    patient = [r for r in by_patient[pid] if r["resourceType"] in ("Patient", "Encounter")]
    try:
        # The service's own FHIR server (--fhir-base-url), in Redis: retried without any call.
        with service(demo_models, fhir_base_url=fhir.base_url, redis_url=redis_url) as base_url:
            detail = discharge(base_url, body)                # the server is not running
            assert "Write-back pending" in detail and "unreachable" in detail, detail
            assert len(queue(base_url)["pending"]) == 1
            assert metric(base_url, "fhir_assist_writeback_queued_total") >= 1
            fhir.start()
            load_patient(fhir.base_url, patient)
            listing = wait_until_written(base_url)
            codes = our_codes(fhir.base_url, encounter)
            assert codes and len(codes) == len(set(codes)), listing
            discharge(base_url, body)
            assert sorted(our_codes(fhir.base_url, encounter)) == sorted(codes)
    finally:
        fhir.stop()


def test_a_refused_retry_is_given_up_listed_and_counted(demo_models, hook_cohort):
    server = HostileServer()
    try:
        body = request_for(hook_cohort, DISCHARGE, 4)
        body["fhirServer"] = f"{server.origin}/fhir"
        server.route("/fhir", Answer(500, b"{}"))
        with service(demo_models, allowed_fhir_servers=(f"{server.origin}/fhir",)) as base_url:
            assert "Write-back pending" in discharge(base_url, body)
            server.routes.clear()
            server.route("/fhir", Answer(422, b'{"resourceType":"OperationOutcome","issue":[]}'))
            deadline = time.monotonic() + 30
            while not queue(base_url)["given_up"]:
                assert time.monotonic() < deadline, "a refused write-back was not given up"
                time.sleep(0.3)
            listing = queue(base_url)
            assert not listing["pending"] and "HTTP 422" in listing["given_up"][0]["last_error"]
            assert metric(base_url, 'fhir_assist_writeback_retries_total{outcome="given-up"}') == 1
            unauthorised = requests.get(f"{base_url}/admin/writebacks?tenant=default", timeout=10)
            assert unauthorised.status_code == 401
    finally:
        server.close()


def test_a_newer_write_waits_while_an_older_one_is_being_retried_and_is_never_overwritten():
    """Two processes, one encounter: while one holds the lease retrying the older write, the newer
    one is queued instead of written beside it, and the older retry's failure does not put its
    stale payload back over the newer."""
    from fhir_assist.cds.app import make_fhir_server_factory
    from fhir_assist.cds.metrics import ServiceMetrics
    from fhir_assist.cds.writeback import PendingWrite, WriteBacks
    from fhir_assist.fhir_server import FhirServerUnavailable
    from fhir_assist.store import MemoryStore, Scope
    from fhir_assist.store.base import WRITEBACK_QUEUE

    server = HostileServer()
    try:
        server.route("/fhir", Answer(503, b"{}"))
        settings = Settings(fhir_timeout=1, write_back_retry_s=60)
        store = MemoryStore()
        queue_ = WriteBacks(store, settings, ServiceMetrics(), make_fhir_server_factory(settings))
        scope = Scope("t", "https://ehr.example.org")
        code = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10", "display": None, "score": 0.9, "rank": 1}
        older = PendingWrite(f"{server.origin}/fhir", "p1", "e1", [code], "v1", queued_at=1.0)
        store.put_pending(scope, older.id, older.to_json(), WRITEBACK_QUEUE)
        raw_older = older.to_json()
        assert store.claim_lease(queue_._lease(scope, older), 30)          # the other process's retry
        newer = PendingWrite(f"{server.origin}/fhir", "p1", "e1", [code, {**code, "code": "E11.9"}], "v2")
        result = queue_.write(scope, newer, None, None)
        assert result.pending is not None and not server.seen, "written beside the older write"
        assert store.pending(scope, WRITEBACK_QUEUE) == {newer.id: newer.to_json()}
        queue_._failed(scope, older, raw_older, FhirServerUnavailable("down"))   # the older retry fails
        (kept,) = store.pending(scope, WRITEBACK_QUEUE).values()
        assert PendingWrite.from_json(kept).model_version == "v2"
    finally:
        server.close()
