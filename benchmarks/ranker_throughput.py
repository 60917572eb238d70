"""Inference throughput of the multitask ICD ranker: stays per second, batched vs one at a time.

    python benchmarks/ranker_throughput.py                       # paper-sized network
    python benchmarks/ranker_throughput.py --artifact icd-ranker # a trained artifact's network
    python benchmarks/ranker_throughput.py --device cuda --stays 100000 --json

The paper-sized network has the MIMIC-III shape of the CAC study: 1,166 inputs
(1,164 ingredients, age, sex), two hidden layers of 2,048 units and 9,336 outputs
(every ICD-9-CM node seen in MIMIC-III). Inputs are random multi-hot rows with about
15 active ingredients per stay. Batch 1 is timed on fewer stays and reported per stay.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model_zoo import icd_ranker  # noqa: E402
from model_zoo.devices import pick_device  # noqa: E402


def build_model(args) -> icd_ranker.IcdRanker:
    if args.artifact:
        from fhir_assist.tasks.coding.artifact import load_ranker
        from model_zoo import registry

        return load_ranker(registry.load(args.artifact)).ranker
    cfg = icd_ranker.RankerConfig(n_inputs=args.inputs, head_names=["all"], head_sizes=[args.labels],
                                  hidden=args.hidden, dropout=0.6)
    return icd_ranker.IcdRanker(cfg)


def random_stays(n: int, width: int, active: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, width)
    idx = torch.randint(0, width - 2, (n, active), generator=g)
    x.scatter_(1, idx, 1.0)
    x[:, -2] = torch.rand(n, generator=g)          # age / 90
    x[:, -1] = (torch.rand(n, generator=g) < 0.5).float()
    return x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batches(model, x: torch.Tensor, batch: int, device: torch.device, repeats: int) -> float:
    """Best-of-`repeats` seconds to score all of x, host→device copies and sigmoid included."""
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            for i in range(0, len(x), batch):
                out = torch.sigmoid(model(x[i:i + batch].to(device, non_blocking=True)))
            _ = out.float().cpu()
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", help="time this artifact's ranker instead of the paper-sized one")
    parser.add_argument("--inputs", type=int, default=1166)
    parser.add_argument("--labels", type=int, default=9336)
    parser.add_argument("--hidden", type=int, nargs="+", default=[2048, 2048])
    parser.add_argument("--stays", type=int, default=20_000, help="stays to score at the large batch")
    parser.add_argument("--single-stays", type=int, default=300, help="stays to score one at a time")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    model = build_model(args).to(device).eval()
    width = model.config.n_inputs
    x = random_stays(args.stays, width, 15)
    # warm-up: kernels, allocator, cuDNN heuristics
    time_batches(model, x[: args.batch], args.batch, device, 1)
    big = time_batches(model, x, args.batch, device, args.repeats)
    small = time_batches(model, x[: args.single_stays], 1, device, max(1, args.repeats - 1))
    result = {
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch_threads": torch.get_num_threads(),
        "network": {"inputs": width, "hidden": list(model.config.hidden), "labels": model.n_labels,
                    "parameters": sum(p.numel() for p in model.parameters())},
        "batch": args.batch,
        "stays_per_s": args.stays / big,
        "stays_per_s_batch1": args.single_stays / small,
    }
    result["speedup_vs_batch1"] = result["stays_per_s"] / result["stays_per_s_batch1"]
    result["seconds_per_58976_stays"] = 58_976 / result["stays_per_s"]   # all of MIMIC-III
    if args.json:
        print(json.dumps(result))
    else:
        net = result["network"]
        print(f"device {result['device']}, {net['parameters']:,} parameters "
              f"({net['inputs']} → {net['hidden']} → {net['labels']})")
        print(f"batch {args.batch}: {result['stays_per_s']:,.0f} stays/s   "
              f"batch 1: {result['stays_per_s_batch1']:,.0f} stays/s   "
              f"speed-up ×{result['speedup_vs_batch1']:.1f}")
        print(f"58,976 stays (MIMIC-III size) in {result['seconds_per_58976_stays']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
