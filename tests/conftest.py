"""Shared fixtures: real servers on free loopback ports, and a small synthetic cohort.

- `redis_url`: a `redis-server` started for the test session (no persistence, temp dir).
- `redis_server`: the same server's controller; `restartable_redis` is a private one a
  test may stop and start (e.g. "Redis stopped mid-run") without disturbing others.
- `fhir_base_url`: parametrized over two real FHIR R4 servers, each started once for the
  session on a free port: the in-memory Medplum server of tests/fhir_server/ (Node) and
  the HAPI FHIR JPA server of tests/hapi_server/ (Java, `scripts/hapi-server.sh`), so every
  test that talks to a FHIR server runs against both (ids `[medplum]`, `[hapi]`). With
  `$FHIR_BASE_URL` set, only that server (`[external]`). `fhir_server_kind` says which.
- `small_cohort_dir`: ~200 synthetic patients (seed 7) written once per session.

Missing system programs skip the tests that need them, with the command that installs
them (`make system-deps`); under `FHIR_ASSIST_REQUIRE_SERVICES=1` (set by `.ci/run`) they
fail instead, so a run cannot pass with part of the suite silently skipped.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
FHIR_SERVER_DIR = ROOT / "tests" / "fhir_server"
INSTALL_HINT = "run `make system-deps` (scripts/system-deps.sh)"
REQUIRE_SERVICES_VAR = "FHIR_ASSIST_REQUIRE_SERVICES"


def services_required() -> bool:
    return os.environ.get(REQUIRE_SERVICES_VAR, "").strip().lower() not in ("", "0", "false", "no")


def service_missing(reason: str) -> NoReturn:
    """Skip a test whose service (Redis, Node, a FHIR server, Chromium, the demo models…)
    is missing; under FHIR_ASSIST_REQUIRE_SERVICES=1 fail it instead."""
    if services_required():
        pytest.fail(f"{reason} [{REQUIRE_SERVICES_VAR}=1: a missing service fails the run]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require_service():
    """`service_missing` for test modules: call it with the reason a service is missing."""
    return service_missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_process(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class RedisServer:
    """A redis-server process on a loopback port that can be stopped and started again
    on the same port (its data is lost: nothing is saved)."""

    def __init__(self, workdir: Path):
        self.executable = shutil.which("redis-server")
        if not self.executable:
            service_missing(f"redis-server is not installed; {INSTALL_HINT}")
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> "RedisServer":
        if self.running:
            return self
        for _attempt in range(3):
            self.proc = subprocess.Popen(
                [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                 "--daemonize", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready(timeout):
                return self
            err = self._stderr_of_failed()
            if "Address already in use" in err:
                self.port = free_port()   # lost the race for the port: pick another
                continue
            raise RuntimeError(f"redis-server did not start on port {self.port}: {err.strip()[-500:]}")
        raise RuntimeError("redis-server could not find a free port")

    def _wait_ready(self, timeout: float) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.RedisError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _stderr_of_failed(self) -> str:
        _stop_process(self.proc)
        return (self.proc.stderr.read() or b"").decode(errors="replace") if self.proc.stderr else ""

    def stop(self) -> None:
        _stop_process(self.proc)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """The session's Redis server (controller); do not stop it, use `restartable_redis`."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    """redis://127.0.0.1:PORT/0 of a real Redis server running for the whole session
    (shared: namespace your keys; to stop Redis, use `restartable_redis`)."""
    return redis_server.url


@pytest.fixture
def restartable_redis(tmp_path):
    """A private Redis server for one test, which it may `.stop()` and `.start()` again
    (same port, empty after a restart); stopped at the end of the test."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


class NodeFhirServer:
    """tests/fhir_server/server.mjs on a free loopback port."""

    READY = re.compile(r"FHIR server ready at (http://\S+)")

    def __init__(self, log_path: Path):
        node = shutil.which("node")
        if not node:
            service_missing(f"node is not installed (needed for the test FHIR server); set FHIR_BASE_URL or {INSTALL_HINT}")
        if not (FHIR_SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
            service_missing(f"the test FHIR server's npm packages are not installed; {INSTALL_HINT}")
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [node, str(FHIR_SERVER_DIR / "server.mjs"), "--host", "127.0.0.1", "--port", "0", "--quiet"],
            cwd=FHIR_SERVER_DIR, stdout=subprocess.PIPE, stderr=self._log)
        self.base_url = self._wait_ready(timeout=60.0)

    def _wait_ready(self, timeout: float) -> str:
        found: list[str] = []

        def read_first_line():
            line = self.proc.stdout.readline().decode(errors="replace")
            found.append(line)

        reader = threading.Thread(target=read_first_line, daemon=True)
        reader.start()
        reader.join(timeout)
        match = self.READY.search(found[0]) if found else None
        if not match:
            self.stop()
            log = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the test FHIR server did not start within {timeout:.0f} s: "
                               f"{(found[0] if found else '').strip()} {log}")
        return match.group(1)

    def stop(self) -> None:
        _stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


# The HAPI test server refuses any other bearer token (requests without one pass).
FHIR_BEARER_TOKEN = "opaque-token"


@pytest.fixture(scope="session")
def fhir_bearer_token() -> str:
    """The access token the HAPI test server accepts; it answers 401 to any other."""
    return FHIR_BEARER_TOKEN


class HapiFhirServer:
    """tests/hapi_server/ (HAPI FHIR JPA, R4, in-memory H2) via scripts/hapi-server.sh on a
    free loopback port; built by Maven on first use."""

    SCRIPT = ROOT / "scripts" / "hapi-server.sh"
    START_TIMEOUT_S = float(os.environ.get("FHIR_ASSIST_HAPI_START_TIMEOUT", "600"))

    def __init__(self, log_path: Path):
        for program in ("java", "mvn"):
            if not shutil.which(program):
                service_missing(f"{program} is not installed (needed for the HAPI FHIR test server); {INSTALL_HINT}")
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.port = free_port()
        started = time.monotonic()
        env = {**os.environ, "HAPI_TEST_BEARER_TOKEN": FHIR_BEARER_TOKEN}
        self.proc = subprocess.Popen(["bash", str(self.SCRIPT), str(self.port)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=self._log, start_new_session=True)
        self.base_url = self._wait_ready()
        self.start_seconds = time.monotonic() - started

    def _wait_ready(self) -> str:
        expected = f"http://127.0.0.1:{self.port}/fhir"
        lines: list[str] = []

        def read_until_ready():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                lines.append(line)
                if line == expected:
                    return

        reader = threading.Thread(target=read_until_ready, daemon=True)
        reader.start()
        reader.join(self.START_TIMEOUT_S)
        if expected not in lines:
            self.stop()
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the HAPI FHIR test server did not start within {self.START_TIMEOUT_S:.0f} s "
                               f"(log {self.log_path}): {log}")
        return expected

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)   # the script exec's java; kill the group
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def _external_fhir_base_url() -> str:
    return os.environ.get("FHIR_BASE_URL", "").strip().rstrip("/")


def _fhir_server_params() -> list[str]:
    return ["external"] if _external_fhir_base_url() else ["medplum", "hapi"]


@pytest.fixture(scope="session")
def medplum_base_url(tmp_path_factory) -> str:
    """The in-memory Medplum FHIR server (Node) of tests/fhir_server/, for the session."""
    server = NodeFhirServer(tmp_path_factory.mktemp("fhir-server") / "server.log")
    yield server.base_url
    server.stop()


@pytest.fixture(scope="session")
def hapi_base_url(tmp_path_factory) -> str:
    """The HAPI FHIR JPA server of tests/hapi_server/, started once for the session."""
    server = HapiFhirServer(tmp_path_factory.mktemp("hapi-server") / "server.log")
    print(f"\nHAPI FHIR test server ready at {server.base_url} in {server.start_seconds:.1f} s")
    yield server.base_url
    server.stop()


@pytest.fixture(scope="session")
def external_base_url() -> str:
    """$FHIR_BASE_URL (e.g. a hospital's HAPI FHIR), checked with GET /metadata."""
    import requests

    external = _external_fhir_base_url()
    try:
        response = requests.get(external + "/metadata", timeout=30, headers={"Accept": "application/fhir+json"})
        response.raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"FHIR_BASE_URL={external} does not answer GET /metadata: {exc}")
    return external


@pytest.fixture(scope="session", params=_fhir_server_params())
def fhir_server_kind(request) -> str:
    """Which FHIR server this run of the test talks to: "medplum", "hapi" or "external"."""
    return request.param


@pytest.fixture(scope="session")
def fhir_base_url(request, fhir_server_kind) -> str:
    """Base URL of a real FHIR R4 server over HTTP (see the module docstring)."""
    return request.getfixturevalue(f"{fhir_server_kind}_base_url")


@pytest.fixture(scope="session")
def small_cohort_dir(tmp_path_factory) -> Path:
    """A synthetic cohort of 200 patients (seed 7), generated once per session."""
    from fhir_assist.synth.generate import generate_cohort

    out = tmp_path_factory.mktemp("cohort-200")
    generate_cohort(200, 7, out, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_models():
    """The bundled demo artifacts, loaded once, as `fhir-assist serve` would load them."""
    import os

    from fhir_assist.suggest.model_set import load_models
    loaded = load_models(os.environ.get("FHIR_ASSIST_MODELS") or None)
    if not loaded.ready:
        service_missing(f"bundled demo models not built ({loaded.errors}); run scripts/build-demo-models.sh")
    return loaded


@pytest.fixture(scope="session")
def hook_cohort(small_cohort_dir):
    """(resources by patient, ids of multi-visit patients with medications) of the small cohort."""
    from fhir_assist.adapter.files import iter_resources
    from fhir_assist.cds.hook_requests import encounters_of, group_by_patient

    by_patient = group_by_patient(iter_resources(small_cohort_dir))
    usable = [pid for pid, items in sorted(by_patient.items())
              if len(encounters_of(items)) >= 2
              and any(r["resourceType"] == "MedicationRequest" for r in items)]
    assert len(usable) >= 10, "the small cohort should have multi-visit patients with medications"
    return by_patient, usable
