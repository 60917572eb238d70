"""Memory of one hook call carrying a large prefetch: RSS before, peak during, after.

    python benchmarks/prefetch_memory.py [--cohort DIR] [--mb 31] [--json]

Builds one encounter-discharge call whose prefetch holds about `--mb` MB of FHIR JSON (one
patient's record, grown with the other patients' resources of a synthetic cohort
re-pointed to that patient), then, each in a fresh process with the demo models loaded,
measures the stages of the call: `parse` (the JSON body to a checked hook call, as the service
reads it), `patient-data` (+ the prefetch checked, resources and timeline built) and `call`
(the whole call through the app, cards included). A thread samples RSS every 2 ms for the
peak. Each stage runs three times in the same run: `before`, with the body read as werkzeug's
get_data reads it (pieces joined: the body twice), `after`, read into one buffer of the
declared length and parsed into dicts (the ordinary path), and `compact`, as the service
now reads it (the prefetch decoded straight into compact records, `cds.compact_call`).
Without --cohort a 200-patient cohort is generated into a temporary directory.

With `--served TREE` the same body is also posted over HTTP to a real `serve --no-auth`
(default settings) of TREE and of this tree, one after the other, and the peak RSS growth
of the server process that answered is read from the kernel (`/proc/PID/status` VmHWM,
the high-water mark reset through `clear_refs` after a warm-up call): what the call costs
the running service, before against after in the same run.
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVICE = "coding-suggestions-encounter-discharge"
STAGES = ("parse", "patient-data", "call")
VARIANTS = ("before", "after", "compact")


def build_body(cohort: Path, megabytes: float) -> bytes:
    from fhir_assist.adapter.files import iter_resources
    from fhir_assist.cds.catalog import BY_ID
    from fhir_assist.cds.hook_requests import build_request, encounters_of, group_by_patient

    by_patient = group_by_patient(iter_resources(cohort))
    pids = [p for p, items in sorted(by_patient.items()) if len(encounters_of(items)) >= 2]
    patient = pids[0]
    body = build_request(BY_ID[SERVICE], by_patient[patient], patient)
    bundles = {r: v for r, v in body["prefetch"].items() if isinstance(v, dict) and v.get("resourceType") == "Bundle"}
    key_of = {}
    for key, bundle in bundles.items():
        for entry in bundle.get("entry") or []:
            key_of.setdefault(entry["resource"]["resourceType"], key)
    size, copy_no = len(json.dumps(body)), 0
    while size < megabytes * 1024 * 1024:
        copy_no += 1
        for other in pids[1:]:
            for resource in by_patient[other]:
                key = key_of.get(resource["resourceType"])
                if key is None or resource["resourceType"] == "Patient":
                    continue
                grown = _repointed(resource, other, patient, copy_no)
                bundles[key]["entry"].append({"resource": grown})
                size += len(json.dumps(grown)) + 16
                if size >= megabytes * 1024 * 1024:
                    break
            if size >= megabytes * 1024 * 1024:
                break
    for bundle in bundles.values():
        bundle["total"] = len(bundle["entry"])
    return json.dumps(body).encode("utf-8")


def _repointed(resource: dict, old: str, new: str, copy_no: int) -> dict:
    """The resource as another visit of `new`: its ids and references made unique to this copy."""
    text = json.dumps(resource)
    text = text.replace(f"Patient/{old}", f"Patient/{new}").replace(f'"{old}-', f'"{old}-c{copy_no}-') \
        .replace(f"/{old}-", f"/{old}-c{copy_no}-")
    return json.loads(text)


class PeakRss:
    def __init__(self):
        import psutil
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def run_stage(stage: str, variant: str, body_path: Path) -> dict:
    """One stage in this process: RSS (MB) before, peak during, after; the call's seconds."""
    import gc

    from flask import request

    from fhir_assist.cds import create_app, http, routes
    from fhir_assist.config import Settings

    if variant == "before":
        http._read_body = lambda: request.get_data(cache=False)

    app = create_app(Settings(no_auth=True, evidence=False, write_back=False))
    app.config[routes.COMPACT_BODIES] = variant == "compact"
    client = app.test_client()
    body = body_path.read_bytes()
    gc.collect()
    rss = PeakRss()
    before = rss.process.memory_info().rss
    started = time.perf_counter()
    with rss, app.test_request_context(f"/cds-services/{SERVICE}", method="POST", data=body,
                                       content_type="application/json"):
        status = _stage(stage, app, client, body)
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss.process.memory_info().rss
    mb = 1024 * 1024
    return {"stage": stage, "variant": variant, "status": status, "body_mb": round(len(body) / mb, 1), "rss_before_mb": round(before / mb),
            "peak_growth_mb": round((rss.peak - before) / mb), "after_growth_mb": round((after - before) / mb),
            "seconds": round(seconds, 2)}


def _stage(stage: str, app, client, body: bytes):
    from fhir_assist.cds.catalog import BY_ID
    from fhir_assist.cds.patient_data import load_patient_data
    from fhir_assist.cds.routes import _read_hook_call

    if stage == "call":
        response = client.post(f"/cds-services/{SERVICE}", data=body, content_type="application/json")
        return response.status_code
    call = _read_hook_call(BY_ID[SERVICE], app.extensions["fhir_assist"].settings)
    if stage == "parse":
        return 200
    data = load_patient_data(call, fetcher=None, executor=None, deadline_s=10)
    return 200 if data.visit is not None else 412


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def served_growth(tree: Path, body: bytes) -> dict:
    """Peak RSS growth (MB) of the `serve` process of `tree` that answers one call with `body`."""
    import http.client

    import psutil

    from cds_load import free_port, start_service

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="prefetch-memory-serve-", suffix=".log", delete=False)
    proc = start_service(port, [], Path(log.name), tree)
    try:
        def post(data: bytes) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request("POST", f"/cds-services/{SERVICE}", body=data, headers={"Content-Type": "application/json"})
            status = conn.getresponse().status
            conn.close()
            return status

        example = (tree / "examples" / "hooks" / f"{SERVICE}.json").read_bytes()
        for _ in range(4):                                     # every worker warm
            post(example)
        pids = [proc.pid] + [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        before = {}
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")   # reset the high-water mark
            before[pid] = _proc_kb(pid, "VmRSS")
        started = time.perf_counter()
        status = post(body)
        seconds = time.perf_counter() - started
        growth = max(_proc_kb(pid, "VmHWM") - before[pid] for pid in pids)
        after = max(_proc_kb(pid, "VmRSS") - before[pid] for pid in pids)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"tree": str(tree), "status": status, "body_mb": round(len(body) / 2**20, 1),
            "peak_growth_mb": round(growth / 1024), "after_growth_mb": round(after / 1024),
            "seconds": round(seconds, 2)}


def print_served(rows: list[dict]) -> None:
    print("\n| served tree | status | body MB | peak growth MB | growth after MB | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tree'][-40:]} | {r['status']} | {r['body_mb']} | {r['peak_growth_mb']} | "
              f"{r['after_growth_mb']} | {r['seconds']} |")
    if len(rows) == 2 and rows[0]["peak_growth_mb"]:
        print(f"peak growth, this tree over the other: {rows[1]['peak_growth_mb'] / rows[0]['peak_growth_mb']:.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohort", type=Path, help="a synthetic cohort directory (default: generate 200 patients)")
    parser.add_argument("--mb", type=float, default=31.0, help="prefetch size to build (MB)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--served", type=Path, metavar="TREE",
                        help="also post the body to a real serve of TREE (e.g. an older checkout) and of this tree")
    parser.add_argument("--served-only", action="store_true", help="with --served: skip the in-process stages")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--body", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.variant, args.body)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cohort = args.cohort
        if cohort is None:
            from fhir_assist.synth.generate import generate_cohort
            cohort = Path(tmp) / "cohort"
            generate_cohort(200, 7, cohort, progress=False, workers=1)
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(build_body(cohort, args.mb))
        rows, served = [], []
        if args.served:
            body = body_path.read_bytes()
            served = [served_growth(args.served.resolve(), body), served_growth(ROOT, body)]
        for stage in STAGES if not args.served_only else ():
            for variant in VARIANTS:
                out = subprocess.run([sys.executable, __file__, "--stage", stage, "--variant", variant,
                                      "--body", str(body_path)], capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps({"stages": rows, "served": served}, indent=2))
        return 0
    if served:
        print_served(served)
    if not rows:
        return 0
    print("| stage | variant | status | body MB | RSS before MB | peak growth MB | growth after MB | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['variant']} | {r['status']} | {r['body_mb']} | {r['rss_before_mb']} | {r['peak_growth_mb']} | "
              f"{r['after_growth_mb']} | {r['seconds']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
