"""`fhir-assist serve` with several processes: the automatic choice, the refusal without
Redis, and a real multi-process server whose workers share the card ledger through Redis
(feedback on a card is accepted whichever worker answered the hook call)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fhir_assist.cds.feedback import SOURCE
from fhir_assist.commands.server_processes import (WorkersError, choose_workers, torch_threads_per_worker,
                                                      usable_cores)
from fhir_assist.store import open_store
from fhir_assist.store.keys import Scope
from tests.conftest import _stop_process, free_port

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "examples" / "hooks"
CODING = "coding-suggestions-encounter-discharge"


def test_automatic_workers_follow_the_store():
    assert choose_workers(0, None, cores=8) == 1                  # in-process state: one process
    assert choose_workers(0, "redis://r:6379/0", cores=8) == 8    # shared state: one per core
    assert choose_workers(3, "redis://r:6379/0", cores=8) == 3
    assert choose_workers(1, None, cores=8) == 1
    with pytest.raises(WorkersError, match="--redis-url"):
        choose_workers(2, None, cores=8)


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


def _serve(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "fhir_assist.cli", "serve", "--no-auth", *args],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def test_several_workers_without_redis_are_refused(tmp_path):
    proc = _serve(["--port", str(free_port()), "--workers", "2"], tmp_path / "serve.log")
    assert proc.wait(timeout=120) != 0
    assert "--redis-url" in (tmp_path / "serve.log").read_text()


def test_workers_share_the_card_ledger_through_redis(redis_url, tmp_path):
    port = free_port()
    proc = _serve(["--port", str(port), "--workers", "2", "--redis-url", redis_url], tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not become ready"
            time.sleep(0.3)
        body = json.loads((HOOKS / f"{CODING}.json").read_text())
        cards = []
        with requests.Session() as first, requests.Session() as second:
            # Two connections, several calls: the workers take turns on the listening socket.
            for session in (first, second, first, second):
                response = session.post(f"{base}/cds-services/{CODING}", json=body, timeout=60)
                assert response.status_code == 200, response.text[:500]
                cards.append(response.json()["cards"][0])
        feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                                  "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                                  "outcomeTimestamp": "2026-11-23T09:00:00Z"} for card in cards]}
        response = requests.post(f"{base}/cds-services/{CODING}/feedback", json=feedback, timeout=30)
        assert response.status_code == 200 and response.json()["stored"] == len(cards), response.text[:500]
        # Every card was known to the worker that took its feedback: labelled, not "card not known".
        store = open_store(redis_url)
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


def _sample_sum(metrics_text: str, name: str, label: str) -> float:
    """Sum of the samples of `name` whose labels contain `label`."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name)] in "{ " and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
