"""Latency of each CDS service: N sequential hook calls over HTTP, with and without Redis.

    .venv/bin/python benchmarks/cds_latency.py                  # 1,000 calls per service id
    .venv/bin/python benchmarks/cds_latency.py --calls 200 --json out.json

The service runs in this process behind waitress on a loopback port (authentication
off, so the figures are the service's own work: validation, prefetch parsing,
timeline building, the model, state read/write, cards). Calls carry their data as
prefetch and rotate over the patients of a small synthetic cohort. The Redis run uses
--redis-url, else a redis-server started here on a free port (skipped if none is
installed). Prints p50 / p90 / p99 / mean in milliseconds per service id.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def start_redis(workdir: Path) -> tuple[subprocess.Popen | None, str | None]:
    exe = shutil.which("redis-server")
    if not exe:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            if client.ping():
                return proc, f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            time.sleep(0.02)
    proc.terminate()
    return None, None


def build_calls(cohort_dir: Path, per_service: int) -> dict[str, list[dict]]:
    from fhir_assist.adapter.files import iter_resources
    from fhir_assist.cds.catalog import SERVICES
    from fhir_assist.cds.hook_requests import build_request, encounters_of, group_by_patient

    patients = group_by_patient(iter_resources(cohort_dir))
    usable = [pid for pid, items in sorted(patients.items())
              if encounters_of(items) and any(r.get("resourceType") == "MedicationRequest" for r in items)]
    if not usable:
        raise SystemExit("the cohort has no patient with encounters and medications")
    calls = {}
    for entry in SERVICES:
        bodies = [build_request(entry, patients[pid], pid) for pid in usable[:per_service]]
        calls[entry.id] = bodies
    return calls


def run(settings, calls: dict[str, list[dict]], n: int, label: str) -> dict[str, dict]:
    import requests
    from tqdm import tqdm

    from fhir_assist.commands.demo import running_service

    results = {}
    with running_service(settings) as base_url:
        session = requests.Session()
        for service_id, bodies in calls.items():
            url = f"{base_url}/cds-services/{service_id}"
            for body in bodies[:3]:                       # warm-up: first-call costs excluded
                session.post(url, json=body, timeout=60)
            times, errors = [], 0
            for i in tqdm(range(n), desc=f"{label} {service_id}", file=sys.stderr, leave=False):
                body = bodies[i % len(bodies)]
                started = time.perf_counter()
                response = session.post(url, json=body, timeout=60)
                times.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200
            results[service_id] = {"p50_ms": percentile(times, 0.5), "p90_ms": percentile(times, 0.9),
                                   "p99_ms": percentile(times, 0.99), "mean_ms": statistics.fmean(times),
                                   "calls": n, "errors": errors}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls per service id (default 1000)")
    parser.add_argument("--patients", type=int, default=80, help="synthetic cohort size (default 80)")
    parser.add_argument("--rotate", type=int, default=40, help="distinct patients per service (default 40)")
    parser.add_argument("--redis-url", default=None, help="Redis to use (default: start one if installed)")
    parser.add_argument("--models", default=None, help="artifact directory (default: bundled demo models)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    import logging
    logging.basicConfig(level=logging.WARNING)
    from fhir_assist.config import Settings
    from fhir_assist.synth.generate import generate_cohort

    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        tmp = Path(tmp)
        generate_cohort(args.patients, 11, str(tmp / "cohort"), progress=False)
        calls = build_calls(tmp / "cohort", args.rotate)
        base = Settings(host="127.0.0.1", port=0, no_auth=True, models_dir=args.models, write_back=False)
        figures = {"memory": run(base, calls, args.calls, "memory")}
        proc, url = (None, args.redis_url) if args.redis_url else start_redis(tmp)
        try:
            if url:
                figures["redis"] = run(base.with_(redis_url=url), calls, args.calls, "redis")
            else:
                print("redis-server not installed: the Redis run is skipped", file=sys.stderr)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)

    import platform
    import os
    print(f"\nCDS service latency, {args.calls} sequential calls per service id "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)")
    print(f"{'service id':42s} {'store':7s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s} {'errors':>6s}")
    for store, results in figures.items():
        for service_id, r in results.items():
            print(f"{service_id:42s} {store:7s} {r['p50_ms']:8.1f} {r['p90_ms']:8.1f} {r['p99_ms']:8.1f} "
                  f"{r['mean_ms']:8.1f} {r['errors']:6d}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
