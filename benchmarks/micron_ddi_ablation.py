"""Does the DDI loss lower MICRON's DDI rate? The ablation under several decision rules.

    .venv/bin/python benchmarks/micron_ddi_ablation.py --data DIR [--seeds 3] [--first-seed 0]
        [--split-seed N] [--epochs N] [--ddi-weight 0.1] [--json]

Trains MICRON with and without the DDI loss (Eq. 7) for each seed (both arms on the
seed's patient split and initialisation), and scores the test patients under each way of turning
σ(m̃(t)) into add/stop decisions:

- `default`: MICRON's default decision, per-medicine cut-offs searched on
  validation F1 plus the interaction stop (of two interacting medicines on the
  list, one scored below `ddi_stop_below` is stopped);
- `no stop`: the same cut-offs without the interaction stop;
- `penalty β=2`: cut-offs searched for F1 less 2 · DDI rate, no stop;
- `paper`: the paper's rule, δ1/δ2 from the 5th/95th percentile of the
  per-medicine validation ROC cut-offs, averaged over medicines;
- `fixed`: one pair for every model (δ1 = 0.5, δ2 = 0.02);
- `loss cuts` / `no-loss cuts`: both models under the default rule of the
  DDI-loss model / of the no-loss model (one validation-tuned rule, held fixed).

Also printed: `soft`, the expected number of interacting pairs per visit,
Σ A_ij σ_i σ_j, before any threshold. Cut-offs tuned per medicine on validation
adapt to each drug's scores, and so give back what the loss took away; one
cut-off shared by all medicines (the fixed rules, the interaction stop) keeps it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RULES = ("default", "no stop", "penalty β=2", "paper", "fixed", "loss cuts", "no-loss cuts")
FIXED_PAIR = (0.5, 0.02)


def _decision_rules(model, validation, config, ddi) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """{rule: (δ1 per medicine, δ2 per medicine, interaction-stop cut-off)}."""
    from model_zoo.micron import MicronConfig, fit_thresholds

    n_med = ddi.shape[0]
    base = config.to_dict()
    default = fit_thresholds(model, validation, config, ddi)
    penalty = fit_thresholds(model, validation, MicronConfig.from_dict(
        {**base, "threshold_ddi_penalty": 2.0, "ddi_stop_below": 0.0}), ddi)
    paper = fit_thresholds(model, validation, MicronConfig.from_dict(
        {**base, "threshold_rule": "roc-percentile", "threshold_mode": "global", "ddi_stop_below": 0.0}), ddi)
    return {"default": (*default.vectors(n_med), default.ddi_stop_below),
            "no stop": (*default.vectors(n_med), 0.0),
            "penalty β=2": (*penalty.vectors(n_med), 0.0),
            "paper": (*paper.vectors(n_med), 0.0),
            "fixed": (np.full(n_med, FIXED_PAIR[0]), np.full(n_med, FIXED_PAIR[1]), 0.0)}


def _soft_interactions(vectors, ddi) -> float:
    per_visit = []
    for vector in vectors:
        probability = 1.0 / (1.0 + np.exp(-vector[1:].astype(np.float64)))
        per_visit.extend(((probability @ ddi) * probability).sum(-1) / 2)
    return float(np.mean(per_visit)) if per_visit else float("nan")


def run(data_dir: str, seeds: range, split_seed: int | None, epochs: int | None,
        ddi_weight: float | None, progress: bool) -> dict:
    from fhir_assist.recipes.micron import configure_threads, default_configs, load_timelines
    from fhir_assist.tasks.medication.encoding import encode_cohort
    from fhir_assist.tasks.medication.interactions import ddi_matrix
    from model_zoo.metrics.medication import medication_change_metrics
    from model_zoo.micron import batched_vectors, interaction_partners, records_from_vectors, train_micron

    configure_threads()
    timelines = load_timelines(data_dir, progress=progress)
    rows, test_patients = [], set()
    for seed in seeds:
        # like `train micron --seed S`: the seed draws the split too, unless one is fixed
        data = encode_cohort(timelines, seed if split_seed is None else split_seed)
        ddi = ddi_matrix(data.vocabularies["med"])
        test = [p for p in data.splits["test"] if len(p) > 1]
        test_patients.add(len(test))
        partners = interaction_partners(ddi, ddi.shape[0])

        def scores(vectors, add, remove, stop_below) -> dict[str, float]:
            records = records_from_vectors(test, vectors, add, remove, partners=partners,
                                           stop_below=stop_below)
            metrics = medication_change_metrics(records, ddi)
            return {key: metrics[key] for key in ("ddi_rate", "jaccard", "f1")}

        arms = []
        for ddi_loss in (True, False):
            config, _ = default_configs(epochs, ddi_loss, ddi_weight)
            started = time.perf_counter()
            model, _, _ = train_micron(data.splits["train"], data.splits["validation"], data.sizes,
                                       ddi, config, seed=seed, progress=progress,
                                       desc=f"seed {seed} {'DDI loss' if ddi_loss else 'no DDI loss'}")
            vectors = batched_vectors(model, test)
            rules = _decision_rules(model, data.splits["validation"], config, ddi)
            row = {"seed": seed, "ddi_loss": ddi_loss, "soft": _soft_interactions(vectors, ddi),
                   "seconds": round(time.perf_counter() - started, 1)}
            row.update({rule: scores(vectors, *cuts) for rule, cuts in rules.items()})
            arms.append((row, vectors, rules["default"]))
        for row, vectors, _ in arms:
            row["loss cuts"] = scores(vectors, *arms[0][2])
            row["no-loss cuts"] = scores(vectors, *arms[1][2])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return {"test_patients": sorted(test_patients), "seeds": len(seeds), "split_seed": split_seed,
            "fixed_pair": FIXED_PAIR, "runs": rows}


def _mean_std(values: list[float]) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{values.mean():.4f} ± {values.std():.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def format_report(result: dict) -> str:
    patients = "/".join(str(n) for n in result["test_patients"])
    split = ("each seed's own split" if result["split_seed"] is None
             else f"split seed {result['split_seed']}")
    lines = [f"MICRON DDI-loss ablation: {patients} test patients, {result['seeds']} seed(s) "
             f"({split}), mean ± std",
             f"{'rule':<13} {'metric':<9} {'DDI loss':>17} {'no DDI loss':>17} {'ratio':>7} "
             f"{'lower in':>9}"]
    runs = result["runs"]
    with_loss = [r for r in runs if r["ddi_loss"]]
    without = [r for r in runs if not r["ddi_loss"]]
    pairs = list(zip(with_loss, without))

    def line(rule: str, metric: str, get) -> str:
        a, b = [get(r) for r in with_loss], [get(r) for r in without]
        lower = sum(x < y for x, y in zip(a, b))
        return (f"{rule:<13} {metric:<9} {_mean_std(a):>17} {_mean_std(b):>17} "
                f"{np.mean(a) / max(np.mean(b), 1e-12):>7.3f} {lower:>4}/{len(pairs)}")

    lines.append(line("scores", "soft DDI", lambda r: r["soft"]))
    for rule in RULES:
        for metric in ("ddi_rate", "f1", "jaccard"):
            lines.append(line(rule, metric, lambda r, rule=rule, metric=metric: r[rule][metric]))
    lines.append("ratio: DDI loss / no DDI loss; lower in: seeds where the DDI-loss model's value "
                 "is lower")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, metavar="DIR", help="cohort directory")
    parser.add_argument("--seeds", type=int, default=3, help="initialisation seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first initialisation seed (default 0)")
    parser.add_argument("--split-seed", type=int, default=None,
                        help="one patient split for every seed (default: each seed draws its own, "
                        "as `train micron --seed S` does)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: MICRON's)")
    parser.add_argument("--ddi-weight", type=float, default=None, help="λ2 (default: MICRON's)")
    parser.add_argument("--json", action="store_true", help="print the runs as one JSON object")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    result = run(args.data, range(args.first_seed, args.first_seed + args.seeds), args.split_seed,
                 args.epochs, args.ddi_weight, progress=sys.stderr.isatty())
    print(json.dumps(result) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
