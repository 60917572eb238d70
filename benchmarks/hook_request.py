"""CPU per hook call in process: the request → patient-data steps, compact path against the ordinary one.

    python benchmarks/hook_request.py [--calls 300] [--rounds 5]

For each example body of `SERVICES` (examples/hooks/), with the bundled demo models, the
same process measures two things, each both ways (`ordinary`: the body parsed into dicts,
walked for depth, resources validated and read as dicts; `compact`: `cds.compact_call`
and `adapter.compact_prefetch`), alternating the two in `--rounds` rounds so that other
work on the machine weighs on both alike:
  steps: reading the body, checking the call, loading the patient data (routes'
         `_read_hook_call`, `_check_prefetch_size`, `load_patient_data`), in a request context;
  call:  the whole call through the Flask test client (cards, model and all).
Prints process CPU ms per call (the median round) and the ratio ordinary / compact.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVICES = ("coding-suggestions-encounter-discharge", "medication-change-order-sign")
WAYS = ("ordinary", "compact")


def _steps(app, service_id: str, body: bytes, calls: int) -> float:
    from fhir_assist.cds import routes
    from fhir_assist.cds.catalog import BY_ID
    from fhir_assist.cds.patient_data import load_patient_data

    settings = app.extensions["fhir_assist"].settings
    entry = BY_ID[service_id]
    started = time.process_time()
    for _ in range(calls):
        with app.test_request_context(f"/cds-services/{service_id}", method="POST", data=body,
                                      content_type="application/json"):
            call = routes._read_hook_call(entry, settings)
            routes._check_prefetch_size(call.prefetch, settings.max_prefetch_resources)
            load_patient_data(call, fetcher=None, executor=None, deadline_s=5.0)
    return (time.process_time() - started) / calls * 1000


def _context_only(app, service_id: str, body: bytes, calls: int) -> float:
    """The request context alone (subtracted from `steps`: the service pays it once per call anyway)."""
    started = time.process_time()
    for _ in range(calls):
        with app.test_request_context(f"/cds-services/{service_id}", method="POST", data=body,
                                      content_type="application/json"):
            pass
    return (time.process_time() - started) / calls * 1000


def _calls(client, service_id: str, body: bytes, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        response = client.post(f"/cds-services/{service_id}", data=body, content_type="application/json")
        assert response.status_code == 200, response.data[:300]
    return (time.process_time() - started) / calls * 1000


def measure(calls: int, rounds: int) -> list[dict]:
    from fhir_assist.cds import create_app, routes
    from fhir_assist.config import Settings
    from fhir_assist.store.memory import MemoryStore
    from fhir_assist.suggest.model_set import load_models, warm_up

    models = load_models(None)
    warm_up(models)
    app = create_app(Settings(no_auth=True), store=MemoryStore(), models=models)
    client = app.test_client()
    rows = []
    for service_id in SERVICES:
        body = (ROOT / "examples" / "hooks" / f"{service_id}.json").read_bytes()
        samples: dict[tuple[str, str], list[float]] = {}
        for way in WAYS * 2:                     # warm both paths
            app.config[routes.COMPACT_BODIES] = way == "compact"
            _calls(client, service_id, body, 10)
        for _ in range(rounds):
            base = _context_only(app, service_id, body, calls)
            for way in WAYS:
                app.config[routes.COMPACT_BODIES] = way == "compact"
                samples.setdefault((way, "steps"), []).append(_steps(app, service_id, body, calls) - base)
                samples.setdefault((way, "call"), []).append(_calls(client, service_id, body, calls))
        app.config[routes.COMPACT_BODIES] = True
        for part in ("steps", "call"):
            ms = {way: statistics.median(samples[(way, part)]) for way in WAYS}
            rows.append({"service": service_id, "part": part, **{f"{w}_ms": round(ms[w], 3) for w in WAYS},
                         "ratio": round(ms["ordinary"] / ms["compact"], 2)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (the median is printed)")
    args = parser.parse_args(argv)
    rows = measure(args.calls, args.rounds)
    print("| service | part | ordinary CPU ms/call | compact CPU ms/call | ordinary / compact |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['service']} | {r['part']} | {r['ordinary_ms']} | {r['compact_ms']} | {r['ratio']}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
