"""MICRON's incremental update vs a GRU that re-reads the whole history.

For patients with 2 and with 50 prior visits, time (median of many runs):
  - MICRON: one `update` of the stored state with the new visit (state bytes
    decoded and re-encoded, as the service does with Redis; the interaction stop
    included),
  - GRU: a forward pass over visits 1..t to score visit t.
MICRON's cost should not grow with history; the GRU's grows linearly.

    .venv/bin/python benchmarks/micron_incremental.py [--artifact micron] [--device cpu]

With an artifact (name or directory) its trained MICRON and GRU are used;
otherwise freshly initialised models of the given sizes (timing does not depend
on the weights).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model_zoo.baselines import GruHistory  # noqa: E402
from model_zoo.micron import Micron, MicronPredictor, PatientSequence  # noqa: E402
from model_zoo.thresholds import MicronThresholds  # noqa: E402


def _models(args):
    """(MICRON, thresholds, GRU, DDI matrix)."""
    if args.artifact:
        from fhir_assist.tasks.medication.artifact import restore
        from model_zoo import registry

        try:
            models, _, ddi = restore(registry.load(args.artifact))
        except FileNotFoundError as exc:
            sys.exit(f"micron_incremental: {exc}")
        return models.micron, models.thresholds, models.gru, ddi
    sizes = (args.dx, args.proc, args.med)
    micron = Micron(*sizes, dim=64, hidden=128, dropout=0.0)
    gru = GruHistory(*sizes, dim=64, hidden=128, dropout=0.0)
    # interactions as dense as in the demo vocabulary (208 of 27,495 medicine pairs), so the
    # interaction stop costs what it would
    rng = np.random.default_rng(0)
    ddi = np.triu(rng.random((args.med, args.med)) < 0.0076, k=1).astype(np.float32)
    ddi[0] = 0
    return micron, MicronThresholds(add=0.7, remove=0.2, ddi_stop_below=0.05), gru, ddi + ddi.T


def _history(rng: random.Random, visits: int, sizes) -> PatientSequence:
    n_dx, n_proc, n_med = sizes
    dx = [rng.sample(range(1, n_dx), min(8, n_dx - 1)) for _ in range(visits)]
    proc = [rng.sample(range(1, n_proc), min(2, n_proc - 1)) for _ in range(visits)]
    meds = [rng.sample(range(1, n_med), min(5, n_med - 1)) for _ in range(visits)]
    return PatientSequence("bench", dx, proc, meds)


def _median_us(fn, repeats: int) -> float:
    for _ in range(min(20, repeats)):
        fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", default=None, help="medication-change artifact (name or directory)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu: one patient at a time)")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--dx", type=int, default=2000)
    parser.add_argument("--proc", type=int, default=500)
    parser.add_argument("--med", type=int, default=150)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    micron, thresholds, gru, ddi = _models(args)
    micron, gru = micron.to(device).eval(), gru.to(device).eval()
    predictor = MicronPredictor(micron, thresholds, ddi)
    sizes = micron.sizes
    rng = random.Random(0)
    rows = []
    for prior in (2, 50):
        history = _history(rng, prior + 1, sizes)
        # state after the prior visits, as it would sit in Redis
        state = None
        for t in range(prior):
            state = predictor.update(state, history.dx[t], history.proc[t],
                                     observed=history.meds[t]).state
        blob = state.to_bytes()
        new_dx, new_proc = history.dx[prior], history.proc[prior]

        def micron_step():
            predictor.update(blob, new_dx, new_proc).state.to_bytes()

        def gru_recompute():
            gru.history_scores(history)  # runs visits 1..prior+1

        rows.append((prior, _median_us(micron_step, args.repeats),
                     _median_us(gru_recompute, args.repeats), len(blob)))
    print(f"device {device}, {torch.get_num_threads()} thread(s); sizes dx={sizes[0]} "
          f"proc={sizes[1]} med={sizes[2]}; median of {args.repeats} runs")
    print(f"{'prior visits':>12}  {'MICRON update':>14}  {'GRU recompute':>14}  {'GRU/MICRON':>10}  state bytes")
    for prior, ours, theirs, size in rows:
        print(f"{prior:>12}  {ours:>11.1f} µs  {theirs:>11.1f} µs  {theirs / ours:>9.1f}x  {size}")
    (_, m2, g2, _), (_, m50, g50, _) = rows
    print(f"50 vs 2 prior visits: MICRON x{m50 / m2:.2f}, GRU x{g50 / g2:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
