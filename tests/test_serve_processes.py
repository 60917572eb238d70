"""`fhir-assist serve` with several processes: the automatic choice, a real multi-process
server whose workers share the card ledger through Redis or, without Redis, through a SQLite
state file (feedback on a card is accepted whichever worker answered the hook call), and the
request body limit under both servers (waitress alone, gunicorn with several processes), and
one client keeping its connection (which process takes a connection: test_accept_gate.py)."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fhir_assist.cds.feedback import SOURCE
from fhir_assist.commands.server_processes import (choose_workers, declared_body_too_large,
                                                      freeze_startup_objects, heartbeat_directory, shared_state_file,
                                                      torch_threads_per_worker, usable_cores)
from fhir_assist.store import open_store
from fhir_assist.store.keys import Scope
from tests.conftest import _stop_process, free_port

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "examples" / "hooks"
CODING = "coding-suggestions-encounter-discharge"


def test_automatic_workers_are_one_per_core_and_share_a_store():
    from fhir_assist.config import Settings

    # the bundled models are small: on the CPU under "auto", with or without a GPU
    assert choose_workers(Settings(), cores=8) == 8
    assert choose_workers(Settings(workers=3), cores=8) == 3
    assert choose_workers(Settings(workers=1), cores=8) == 1
    assert choose_workers(Settings(workers=3, device="cpu"), cores=8) == 3
    with_redis = Settings(redis_url="redis://r:6379/0")
    assert shared_state_file(with_redis) == (with_redis, None)
    named = Settings(state_file="/var/lib/fhir-assist/state.db")
    assert shared_state_file(named) == (named, None)
    assert named.state_file_durable
    settings, folder = shared_state_file(Settings())
    try:
        assert settings.state_file == os.path.join(folder, "state.db") and os.path.isdir(folder)
        assert not settings.state_file_durable      # removed at exit: never flushed to disk
    finally:
        os.rmdir(folder)


def test_a_container_cpu_limit_caps_the_cores(tmp_path):
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")                # 1.5 CPUs
    assert usable_cores(str(limit)) == min(2, usable_cores(str(tmp_path / "none")))
    limit.write_text("max 100000\n")
    assert usable_cores(str(limit)) == usable_cores(str(tmp_path / "none"))


def test_torch_threads_split_the_cores():
    assert torch_threads_per_worker(1, cores=4) == 4
    assert torch_threads_per_worker(2, cores=4) == 2
    assert torch_threads_per_worker(8, cores=4) == 1


def test_worker_heartbeats_go_to_a_memory_backed_directory_where_there_is_one(tmp_path):
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    assert heartbeat_directory((str(tmp_path / "absent"), str(tmp_path))) == str(tmp_path)
    if os.geteuid() != 0:           # root writes anywhere
        assert heartbeat_directory((str(read_only),)) is None
    assert heartbeat_directory((str(tmp_path / "absent"),)) is None       # gunicorn's default then
    assert heartbeat_directory() == ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)


def test_objects_alive_at_startup_are_left_out_of_garbage_collections():
    import gc

    loaded = {"weights": [[0.5] * 3]}            # stands for the models built before the fork
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert not any(obj is loaded for obj in gc.get_objects())
        later = {"call": []}
        assert any(obj is later for obj in gc.get_objects())
    finally:
        gc.unfreeze()


def _serve(args: list[str], log: Path, **env_vars: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_vars)
    return subprocess.Popen([sys.executable, "-m", "fhir_assist.cli", "serve", "--no-auth", *args],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _wait_ready(proc: subprocess.Popen, base: str, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"serve did not become ready: {log.read_text()[-2000:]}"
        time.sleep(0.3)


@pytest.mark.parametrize("shared", ["redis", "state-file"])
def test_workers_share_the_card_ledger(shared, tmp_path, request):
    port = free_port()
    if shared == "redis":
        url = request.getfixturevalue("redis_url")
        proc = _serve(["--port", str(port), "--workers", "2", "--redis-url", url], tmp_path / "serve.log")
        open_shared = lambda: open_store(url)   # noqa: E731
    else:
        state = str(tmp_path / "state.db")
        proc = _serve(["--port", str(port), "--workers", "2"], tmp_path / "serve.log", FHIR_ASSIST_STATE_FILE=state)
        open_shared = lambda: open_store(None, state)   # noqa: E731
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, tmp_path / "serve.log")
        body = json.loads((HOOKS / f"{CODING}.json").read_text())
        cards = []
        with requests.Session() as first, requests.Session() as second:
            # Several calls, each on a new connection (the client closes them): the workers take
            # turns on the listening socket.
            for session in (first, second, first, second):
                response = session.post(f"{base}/cds-services/{CODING}", json=body, timeout=60,
                                        headers={"Connection": "close"})
                assert response.status_code == 200, response.text[:500]
                cards.append(response.json()["cards"][0])
        feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                                  "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                                  "outcomeTimestamp": "2026-11-23T09:00:00Z"} for card in cards]}
        response = requests.post(f"{base}/cds-services/{CODING}/feedback", json=feedback, timeout=30)
        assert response.status_code == 200 and response.json()["stored"] == len(cards), response.text[:500]
        # Every card was known to the worker that took its feedback: labelled, not "card not known".
        store = open_shared()
        try:
            events = [e for e in store.list_feedback(Scope(), source=SOURCE)
                      if e["card"] in {card["uuid"] for card in cards}]
        finally:
            store.close()
        assert len(events) == len(cards)
        assert all("note" not in e and e["code"] and e["label"] == 1 for e in events), events
        assert "2 server process(es)" in (tmp_path / "serve.log").read_text()
        # /metrics adds up every process: each scrape (a new connection, any worker) sees all calls.
        for _ in range(6):
            text = requests.get(f"{base}/metrics", timeout=10).text
            assert _sample_sum(text, "fhir_assist_cds_calls_total", f'service="{CODING}"') == len(cards), text
            assert _sample_sum(text, "fhir_assist_models_loaded", "") == 1
    finally:
        _stop_process(proc, timeout=30)


def test_one_client_calling_in_turn_keeps_its_connection(tmp_path):
    port = free_port()
    proc = _serve(["--port", str(port), "--workers", "2"], tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, tmp_path / "serve.log")
        body = (HOOKS / f"{CODING}.json").read_bytes()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        closed, sockets = [], []
        for _ in range(5):
            conn.request("POST", f"/cds-services/{CODING}", body=body, headers={"Content-Type": "application/json"})
            sockets.append(conn.sock.getsockname())
            response = conn.getresponse()
            assert response.status == 200
            closed.append(response.getheader("Connection", "").lower() == "close")
            response.read()
        conn.close()
        # The first call may find its process still holding the readiness probe's connection (the
        # probe closes it as this one opens); from then on the one connection is kept: http.client
        # would open a new one after a close.
        assert closed[1:] == [False] * 4 and len(set(sockets[1:])) == 1, (closed, sockets)
    finally:
        _stop_process(proc, timeout=30)


def test_a_body_over_the_limit_or_of_unknown_size_closes_the_connection():
    assert declared_body_too_large([("CONTENT-LENGTH", "900000000")], 1024)
    assert not declared_body_too_large([("CONTENT-LENGTH", "1024"), ("HOST", "x")], 1024)
    assert declared_body_too_large([("TRANSFER-ENCODING", "chunked")], 1024)
    assert not declared_body_too_large([], 1024)


def _answer_then_eof(port: int, head: bytes, body: bytes = b"") -> tuple[str, float, bool]:
    """Send a request head (and the start of its body); the answer's status line, how long it
    took, and whether the server then closed the connection instead of waiting for the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
        sock.settimeout(5)
        closed = False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), elapsed, closed


@pytest.mark.parametrize("mode", ["waitress", "gunicorn"])
def test_an_oversized_body_gets_an_early_413_under_every_server(mode, redis_url, tmp_path):
    """A 900 MB Content-Length is answered 413 at once, from the headers, and the connection is
    closed: the server neither buffers the body nor keeps reading it to reuse the connection."""
    port = free_port()
    args = ["--port", str(port)] + (["--workers", "2", "--redis-url", redis_url] if mode == "gunicorn"
                                    else ["--workers", "1"])
    log = tmp_path / "serve.log"
    proc = _serve(args, log, FHIR_ASSIST_MAX_REQUEST_MB="1")
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}", log)
        head = (f"POST /cds-services/{CODING} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 900000000\r\n\r\n").encode()
        status, elapsed, closed = _answer_then_eof(port, head, b"{" * 65536)
        assert status.startswith("HTTP/1.1 413"), status
        assert elapsed < 5 and closed, (elapsed, closed)
        # A chunked body of unknown size is cut at the limit too.
        head = (f"POST /cds-services/{CODING} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        status, elapsed, closed = _answer_then_eof(port, head, b"35a4e900\r\n" + b"{" * (2 * 1024 * 1024))
        assert status.startswith("HTTP/1.1 413"), status
        assert closed
        # The server still answers normal calls.
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        _stop_process(proc, timeout=30)


def _sample_sum(metrics_text: str, name: str, label: str) -> float:
    """Sum of the samples of `name` whose labels contain `label`."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name)] in "{ " and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
