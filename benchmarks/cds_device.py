"""One hook call in process with the models on the CPU and on a GPU: what `--device` buys a call.

    .venv/bin/python benchmarks/cds_device.py                 # CPU, and cuda when there is one
    .venv/bin/python benchmarks/cds_device.py --calls 500 --rounds 3

Builds the service in process (the bundled demo models, an in-process store, the example bodies
of examples/hooks/) with every movable model on each device in turn, rounds alternating so a
drifting machine affects both alike, and prints the wall-clock p50 and p90 of a call per device
and service, and each GPU figure's ratio to the CPU figure of the same round. One torch thread,
as each server process has on a machine with one process per core.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from cds_latency import percentile  # the benchmarks' one percentile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVICES = ("coding-suggestions-encounter-discharge", "medication-change-order-sign")


def call_times(device: str, calls: int, warm_up: int = 30) -> dict[str, list[float]]:
    """Wall-clock ms of each call, per service, with the models placed on `device`."""
    from fhir_assist.cds import create_app
    from fhir_assist.config import Settings
    from fhir_assist.store.memory import MemoryStore
    from fhir_assist.suggest.model_set import load_models

    app = create_app(Settings(no_auth=True, device=device), store=MemoryStore(),
                     models=load_models(None, device))
    client = app.test_client()
    out = {}
    for service in SERVICES:
        body = (ROOT / "examples" / "hooks" / f"{service}.json").read_bytes()
        for _ in range(warm_up):
            answer = client.post(f"/cds-services/{service}", data=body, content_type="application/json")
            if answer.status_code != 200:
                raise SystemExit(f"{service} on {device}: HTTP {answer.status_code}: {answer.get_data(True)[:300]}")
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            client.post(f"/cds-services/{service}", data=body, content_type="application/json")
            times.append((time.perf_counter() - started) * 1000)
        out[service] = times
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per service, device and round (default 300)")
    parser.add_argument("--rounds", type=int, default=2, help="CPU/GPU alternations (default 2)")
    args = parser.parse_args(argv)

    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if len(devices) == 1:
        print("no CUDA device here: the CPU rows only")
    print(f"{'round':>5}  {'device':6} {'service':40} {'p50 ms':>8} {'p90 ms':>8} {'p50 / CPU':>9}")
    for round_ in range(1, args.rounds + 1):
        cpu_p50 = {}
        for device in devices:
            for service, times in call_times(device, args.calls).items():
                p50, p90 = percentile(times, 0.5), percentile(times, 0.9)
                cpu_p50.setdefault(service, p50)
                print(f"{round_:>5}  {device:6} {service:40} {p50:8.2f} {p90:8.2f} {p50 / cpu_p50[service]:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
