"""Does the model-selection metric matter? μF1 vs NDCG vs μAUPRC, judged by RE@R.

    python benchmarks/selection_criterion.py --data /tmp/cohort5k
    python benchmarks/selection_criterion.py --data DIR --epochs 12 --json

The CAC paper (Sec. 3.2) found that choosing models by the usual μF1 gives worse
rankings — more wrong codes read before reaching a recall R — than choosing by NDCG
or a micro-averaged AUPRC. This script repeats the experiment on a FHIR cohort:
it trains a small grid of multitask rankers (width, depth, dropout), scores every
epoch of every configuration on the validation patients with each criterion
(μF1 at 0.5, NDCG, μAUPRC; means over the six heads), keeps the checkpoint each
criterion would pick, and reports test RE@{50,75,90,100} and NDCG per level for
the three picks, plus the relative RE@R change against the μF1 pick
(negative = fewer codes read in vain).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

CRITERIA = ("f1", "ndcg", "auprc")
GRID = [
    {"hidden": [512], "dropout": 0.2},
    {"hidden": [1024, 1024], "dropout": 0.6},
    {"hidden": [2048, 2048], "dropout": 0.6},
    {"hidden": [1024, 1024, 1024], "dropout": 0.3},
]
RS = (50, 75, 90, 100)


def run(data: str, *, seed: int = 0, epochs: int = 15, grid=GRID, device=None, progress=True) -> dict:
    from fhir_assist.adapter.timeline import load_cohort
    from fhir_assist.recipes.ranker import train_ranker_models
    from fhir_assist.tasks.coding.encounters import collect_encounters
    from fhir_assist.tasks.coding.settings import RANKER_DEFAULTS
    from fhir_assist.tasks.coding.spaces import FeatureSpace, LabelSpace
    from model_zoo import icd_ranker
    from model_zoo.metrics import ranking as rk

    cohort = load_cohort(data, progress=progress)
    encounters, _ = collect_encounters(cohort.timelines, seed, progress=progress)
    train = [e for e in encounters if e.split == "train"]
    test = [e for e in encounters if e.split == "test"]
    features = FeatureSpace.build(train)
    labels = LabelSpace.build(train)
    best = {c: {"value": -np.inf} for c in CRITERIA}

    for i, cfg in enumerate(grid):
        hyper = dict(RANKER_DEFAULTS, **cfg, epochs=epochs, patience=None)
        epoch = {"n": 0}

        def snapshot(model, values, cfg=cfg, epoch=epoch):
            epoch["n"] += 1
            for c in CRITERIA:
                if values[c] > best[c]["value"]:
                    best[c] = {"value": values[c], "config": dict(cfg), "epoch": epoch["n"],
                               "model_config": model.config, "state": copy.deepcopy(model.state_dict())}
        if progress:
            print(f"configuration {i + 1}/{len(grid)}: {cfg}", file=sys.stderr)
        train_ranker_models(encounters, hyper=hyper, seed=seed, select="ndcg", device=device,
                                   progress=progress, features=features, labels=labels,
                                   train_baselines=False, snapshot=snapshot)

    x, y = features.encode(test), labels.encode(test)
    yn = y.numpy()
    slices = labels.slices()
    results = {}
    for c in CRITERIA:
        model = icd_ranker.IcdRanker(best[c]["model_config"])
        model.load_state_dict(best[c]["state"])
        s = icd_ranker.predict_proba(model, x).numpy()
        levels = {}
        for head, sl in slices.items():
            levels[head] = {f"re@{r}": rk.rank_errors_at_recall(s[:, sl], yn[:, sl], r / 100) for r in RS}
            levels[head]["ndcg"] = rk.ndcg(s[:, sl], yn[:, sl])
        results[c] = {"validation": best[c]["value"], "config": best[c]["config"],
                      "epoch": best[c]["epoch"], "levels": levels}
    relative = {}
    for c in ("ndcg", "auprc"):
        relative[c] = {}
        for r in RS:
            key = f"re@{r}"
            changes = [(results[c]["levels"][h][key] - results["f1"]["levels"][h][key])
                       / max(results["f1"]["levels"][h][key], 1e-9) for h in slices]
            relative[c][key] = float(np.mean(changes))
    return {"test_encounters": len(test), "epochs": epochs, "grid": grid, "selected": results,
            "relative_re_vs_f1": relative}


def format_report(report: dict) -> str:
    lines = [f"model selection by μF1 vs NDCG vs μAUPRC — {report['test_encounters']} test encounters, "
             f"{len(report['grid'])} configurations × {report['epochs']} epochs", ""]
    header = f"{'level':8}{'selected by':12}" + "".join(f"{'re@' + str(r):>9}" for r in RS) + f"{'ndcg':>8}"
    lines += [header, "-" * len(header)]
    heads = list(next(iter(report["selected"].values()))["levels"])
    for head in heads:
        for c in CRITERIA:
            lv = report["selected"][c]["levels"][head]
            lines.append(f"{head:8}{c:12}" + "".join(f"{lv[f're@{r}']:9.2f}" for r in RS) + f"{lv['ndcg']:8.3f}")
    lines.append("")
    for c in CRITERIA:
        sel = report["selected"][c]
        lines.append(f"{c:6} picked {sel['config']} epoch {sel['epoch']} (validation {sel['validation']:.4f})")
    lines.append("")
    lines.append("RE@R change against the μF1 pick, mean over levels (negative = fewer codes read in vain):")
    for c, rel in report["relative_re_vs_f1"].items():
        lines.append(f"  {c:6}" + "".join(f"  {k} {v:+.1%}" for k, v in rel.items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="cohort directory (FHIR NDJSON or Bundles)")
    parser.add_argument("--seed", type=int, default=0, help="split and initialisation seed")
    parser.add_argument("--epochs", type=int, default=15, help="epochs per configuration")
    parser.add_argument("--quick", action="store_true", help="two small configurations (smoke test)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    grid = [{"hidden": [256], "dropout": 0.2}, {"hidden": [256, 256], "dropout": 0.6}] if args.quick else GRID
    report = run(args.data, seed=args.seed, epochs=args.epochs, grid=grid, device=args.device,
                 progress=sys.stderr.isatty() or not args.json)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
