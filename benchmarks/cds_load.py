"""Load test of the CDS Hooks service: `fhir-assist serve --no-auth` on the bundled demo models.

    .venv/bin/python benchmarks/cds_load.py                           # default serve settings
    .venv/bin/python benchmarks/cds_load.py --serve-arg=--workers=1   # any serve option
    .venv/bin/python benchmarks/cds_load.py --redis                   # state in Redis: several processes
    .venv/bin/python benchmarks/cds_load.py --tree /tmp/old-checkout  # the same run against another tree
    .venv/bin/python benchmarks/cds_load.py --duration 10 --json out.json --png load.png

Starts the service as its own process (exactly as an operator would), waits for /readyz,
then measures, per target:

* closed loop: `wrk` at a fixed number of connections (1, 10, 50 by default): throughput
  and latency when every client sends its next call as soon as the last one returns;
* open loop: a Python driver sending at a fixed offered rate (10, 25, 50 calls/s by
  default), latency counted from each call's *scheduled* time, so a queue in the
  service shows up as latency instead of slowing the sender down.

Targets: coding-suggestions-encounter-discharge and medication-change-order-sign with
the bodies in examples/hooks/, and GET /healthz as the HTTP floor of the same run (the
cost of the server, Flask and the loopback alone). Absolute figures depend on what else
the machine is doing; the ratios against /healthz in the same run are the comparable ones.
Prints p50/p90/p99 (ms), throughput (calls/s) and errors (non-2xx, socket errors,
timeouts); writes a PNG of latency against offered load.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from cds_latency import percentile  # noqa: E402  (the script's own folder is on sys.path)

HOOKS = ROOT / "examples" / "hooks"
TARGETS = {
    "healthz": ("GET", "/healthz", None),
    "coding-suggestions-encounter-discharge": (
        "POST", "/cds-services/coding-suggestions-encounter-discharge",
        HOOKS / "coding-suggestions-encounter-discharge.json"),
    "medication-change-order-sign": (
        "POST", "/cds-services/medication-change-order-sign", HOOKS / "medication-change-order-sign.json"),
}

# wrk's report as one JSON line: latency in microseconds, errors split by kind.
WRK_SCRIPT = r"""
local body_file = os.getenv("CDS_LOAD_BODY")
wrk.method = os.getenv("CDS_LOAD_METHOD")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'CDS_LOAD {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "mean": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(port: int, serve_args: list[str], log_path: Path, tree: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fhir_assist.cli", "serve", "--no-auth", "--port", str(port), *serve_args]
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(cmd, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=tree)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}; see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"serve did not become ready in 180 s; see {log_path}")


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server on a free port (the state several server processes share)."""
    exe = shutil.which("redis-server")
    if not exe:
        raise SystemExit("--redis needs redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"redis://127.0.0.1:{port}/0"


def wait_idle(port: int, limit_s: float = 180) -> None:
    """Wait until the calls left over from the last point (a saturated service keeps a queue
    after the load stops) are done: /healthz queues behind them, so a quick answer twice
    in a row means the service is idle again."""
    quick, deadline = 0, time.monotonic() + limit_s
    while quick < 2 and time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
        except OSError:
            time.sleep(0.5)
            continue
        quick = quick + 1 if time.perf_counter() - started < 0.1 else 0
        time.sleep(0.2)


def run_wrk(base: str, target: str, connections: int, duration: int, script: Path) -> dict:
    method, path, body = TARGETS[target]
    env = dict(os.environ, CDS_LOAD_METHOD=method, CDS_LOAD_BODY=str(body or ""))
    cmd = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "10s", "-s", str(script), base + path]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("CDS_LOAD "))
    raw = json.loads(line[len("CDS_LOAD "):])
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {"mode": "closed", "load": connections, "calls": raw["requests"], "errors": errors,
            "throughput": raw["requests"] / seconds, "p50": raw["p50"] / 1000, "p90": raw["p90"] / 1000,
            "p99": raw["p99"] / 1000, "mean": raw["mean"] / 1000}


def run_open_loop(port: int, target: str, rate: float, duration: int, senders: int = 64) -> dict:
    """Send at `rate` calls/s for `duration` s; latency from each call's scheduled start.
    Calls still queued 10 s after the last one was due are not sent and count as errors."""
    method, path, body_file = TARGETS[target]
    body = body_file.read_bytes() if body_file else None
    headers = {"Content-Type": "application/json"} if body else {}
    schedule: queue.Queue = queue.Queue()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    stop_at = [float("inf")]

    def sender() -> None:
        conn = None
        while (due := schedule.get()) is not None:
            if time.perf_counter() > stop_at[0]:
                # A saturated service would keep the driver busy long after the point's
                # duration; calls not even sent by then count as errors.
                with lock:
                    errors[0] += 1
                continue
            ok = False
            for fresh in (conn is None, True):
                # A kept-alive connection the server has since closed is retried once on a new
                # one, as HTTP clients do; a failure on a new connection is an error.
                try:
                    conn = conn if not fresh and conn is not None else http.client.HTTPConnection(
                        "127.0.0.1", port, timeout=10)
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = 200 <= response.status < 300
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = None
                    if fresh:
                        break
            done = time.perf_counter()
            with lock:
                latencies.append((done - due) * 1000)
                errors[0] += not ok

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    stop_at[0] = start + duration + 10
    n = int(rate * duration)
    for i in range(n):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        schedule.put(due)
    for _ in threads:
        schedule.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"mode": "open", "load": rate, "calls": n, "errors": errors[0], "throughput": n / elapsed,
            "p50": percentile(latencies, 0.5), "p90": percentile(latencies, 0.9),
            "p99": percentile(latencies, 0.99), "mean": sum(latencies) / max(len(latencies), 1)}


def print_table(results: dict[str, list[dict]]) -> None:
    print(f"{'target':40s} {'mode':6s} {'load':>5s} {'calls/s':>8s} {'p50 ms':>8s} {'p90 ms':>8s} "
          f"{'p99 ms':>8s} {'errors':>6s}")
    for target, rows in results.items():
        for r in rows:
            print(f"{target:40s} {r['mode']:6s} {r['load']:>5g} {r['throughput']:8.1f} {r['p50']:8.1f} "
                  f"{r['p90']:8.1f} {r['p99']:8.1f} {r['errors']:6d}")
    floor = {r["load"]: r for r in results.get("healthz", []) if r["mode"] == "closed"}
    if floor:
        print("\nthroughput as a fraction of /healthz at the same concurrency (same run):")
        for target, rows in results.items():
            if target == "healthz":
                continue
            ratios = [f"{r['load']:g} clients {r['throughput'] / floor[r['load']]['throughput']:.3f}"
                      for r in rows if r["mode"] == "closed" and r["load"] in floor]
            print(f"  {target}: " + ", ".join(ratios))


def plot(results: dict[str, list[dict]], png: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, ax, xlabel in (("open", axes[0], "offered load (calls/s)"),
                             ("closed", axes[1], "concurrent clients (wrk)")):
        for target, rows in results.items():
            pts = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["load"])
            if not pts:
                continue
            x = [r["load"] for r in pts]
            line, = ax.plot(x, [r["p50"] for r in pts], marker="o", label=f"{target} p50")
            ax.plot(x, [r["p99"] for r in pts], marker="^", linestyle="--", color=line.get_color(),
                    label=f"{target} p99")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("latency (ms)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("open loop: latency vs offered rate")
    axes[1].set_title("closed loop: latency vs concurrency")
    axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement point (default 10)")
    parser.add_argument("--clients", default="1,10,50", help="wrk connection counts (default 1,10,50)")
    parser.add_argument("--rates", default="10,25,50", help="open-loop offered rates, calls/s (default 10,25,50)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of " + ", ".join(TARGETS))
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help="extra option for `fhir-assist serve` (repeatable), e.g. --serve-arg=--workers=1")
    parser.add_argument("--redis", action="store_true",
                        help="start a local redis-server and serve with --redis-url (so plain serve may "
                        "run several processes, as in production)")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="source tree to serve from (default this one; another checkout for before/after)")
    parser.add_argument("--png", type=Path, default=Path("cds_load.png"), help="latency plot (default cds_load.png)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--title", default="", help="label for the plot and the JSON (e.g. before/after)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    clients = [int(c) for c in args.clients.split(",") if c]
    rates = [float(r) for r in args.rates.split(",") if r]
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cds-load-") as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(WRK_SCRIPT)
        log_path = Path(tmp) / "serve.log"
        redis, serve_args = None, list(args.serve_arg)
        if args.redis:
            redis, url = start_redis(Path(tmp))
            serve_args += ["--redis-url", url]
        proc = start_service(port, serve_args, log_path, args.tree.resolve())
        results: dict[str, list[dict]] = {}
        try:
            base = f"http://127.0.0.1:{port}"
            for target in targets:
                rows = results.setdefault(target, [])
                for c in clients:
                    rows.append(run_wrk(base, target, c, args.duration, script))
                    wait_idle(port)
                for rate in rates:
                    rows.append(run_open_loop(port, target, rate, args.duration))
                    wait_idle(port)
        finally:
            for child in (proc, redis):
                if child is None:
                    continue
                child.terminate()
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
    title = f"cds_load {args.title} serve {' '.join(args.serve_arg)}{' +redis' if args.redis else ''} ({os.cpu_count()} cores, {args.duration} s/point)"
    print_table(results)
    plot(results, args.png, title)
    print(f"\nplot: {args.png}")
    if args.json:
        args.json.write_text(json.dumps({"title": title, "serve_args": args.serve_arg, "cores": os.cpu_count(),
                                         "duration_s": args.duration, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
