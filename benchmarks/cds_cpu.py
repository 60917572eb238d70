"""CPU time per hook call of `fhir-assist serve`, this tree against another, in one run.

    .venv/bin/python benchmarks/cds_cpu.py --tree /tmp/old-checkout              # default serve of both
    .venv/bin/python benchmarks/cds_cpu.py --tree /tmp/old-checkout --workers default,1 --calls 300

Starts each tree's `serve --no-auth` (the bundled demo models, the example bodies of
examples/hooks/), sends every process a few calls to warm it, then `--calls` calls from
`--clients` concurrent connections, and reads the user + system CPU time of the server's
whole process tree before and after. CPU per call is what a core can serve (1000 / ms =
calls/s per core) and, unlike latency and throughput, hardly moves when other work shares
the machine; wall-clock calls/s is printed beside it. Prints a row per (tree, workers,
service) and the ratios against the baseline tree.
"""
from __future__ import annotations

import argparse
import http.client
import tempfile
import threading
import time
from pathlib import Path

from cds_load import free_port, start_service  # the one way the benchmarks start serve

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("coding-suggestions-encounter-discharge", "medication-change-order-sign")


def _tree_cpu(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root] + root.children(recursive=True):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _drive(port: int, service: str, body: bytes, calls: int, clients: int) -> list[int]:
    statuses: list[int] = []

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(n):
            conn.request("POST", f"/cds-services/{service}", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)

    threads = [threading.Thread(target=client, args=(calls // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def measure(tree: Path, workers: str, service: str, calls: int, clients: int) -> dict:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="cds-cpu-serve-", suffix=".log", delete=False)
    proc = start_service(port, [] if workers == "default" else ["--workers", workers], Path(log.name), tree)
    try:
        body = (tree / "examples" / "hooks" / f"{service}.json").read_bytes()
        _drive(port, service, body, 5 * clients, clients)            # every process warm
        cpu, started = _tree_cpu(proc.pid), time.monotonic()
        statuses = _drive(port, service, body, calls, clients)
        cpu, wall = _tree_cpu(proc.pid) - cpu, time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"tree": str(tree), "workers": workers, "service": service, "calls": len(statuses),
            "errors": sum(1 for s in statuses if s != 200), "cpu_ms": 1000 * cpu / max(1, len(statuses)),
            "calls_per_s": len(statuses) / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="baseline checkout (e.g. the release before)")
    parser.add_argument("--workers", default="default", help="serve --workers values for this tree, "
                        "comma-separated; 'default' = plain serve (default: default)")
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement (default 300)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent connections (default 10)")
    args = parser.parse_args(argv)
    rows = []
    for service in SERVICES:
        base = measure(args.tree.resolve(), "default", service, args.calls, args.clients)
        rows.append((base, base))
        for workers in args.workers.split(","):
            rows.append((measure(ROOT, workers, service, args.calls, args.clients), base))
    print(f"{'tree':30s} {'workers':>8s} {'service':40s} {'calls':>6s} {'errors':>6s} {'CPU ms/call':>11s} "
          f"{'calls/s':>8s} {'CPU ×':>6s} {'calls/s ×':>9s}")
    for row, base in rows:
        print(f"{row['tree'][-30:]:30s} {row['workers']:>8s} {row['service']:40s} {row['calls']:6d} "
              f"{row['errors']:6d} {row['cpu_ms']:11.2f} {row['calls_per_s']:8.1f} "
              f"{base['cpu_ms'] / row['cpu_ms']:6.2f} {row['calls_per_s'] / base['calls_per_s']:9.2f}")
    print("\nCPU ×: the baseline's CPU per call over this row's (calls per core); calls/s ×: wall-clock throughput.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
