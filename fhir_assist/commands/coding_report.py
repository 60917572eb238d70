"""Tables and plots of coding evaluations (`evaluate`, `train icd-ranker|text-coder`)."""
from __future__ import annotations

from pathlib import Path

import torch

from fhir_assist.tasks.coding.evaluation import to_numpy
from fhir_assist.tasks.coding.ontology import HEADS


def fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def write_plots(scores: dict[str, torch.Tensor], y: torch.Tensor, slices: dict[str, slice],
                out_dir: str | Path) -> list[str]:
    from model_zoo import plots
    from model_zoo.metrics import ranking as rk

    out = Path(out_dir)
    yn = to_numpy(y)
    re_curves, recall_curves, calibration = {}, {}, {}
    ks = [1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 75, 100]
    for name, s in scores.items():
        sn = to_numpy(s)
        re_curves[name] = {h: rk.re_at_r_curve(sn[:, sl], yn[:, sl]) for h, sl in slices.items()}
        recall_curves[name] = {h: rk.recall_at_k_curve(sn[:, sl], yn[:, sl], ks) for h, sl in slices.items()}
        calibration[name] = rk.calibration_bins(sn, yn, 10)
    return [str(plots.plot_re_at_r(re_curves, out / "re_at_r.png")),
            str(plots.plot_recall_at_k(recall_curves, out / "recall_at_k.png")),
            str(plots.plot_calibration(calibration, out / "calibration.png"))]


def format_table(report: dict) -> str:
    from model_zoo.metrics.ranking import RANKING_KEYS

    lines = [f"ICD/CCS coding — {report['test_encounters']} test encounters "
             f"({report['kind']}, split seed {report['split_seed']})"]
    if report.get("unknown"):
        lines.append("not in the model's vocabularies: " +
                     ", ".join(f"{k} {v}" for k, v in sorted(report["unknown"].items())))
    name_w = max(len(m["model"]) for m in report["models"]) + 2
    header = "level".ljust(8) + "model".ljust(name_w) + "".join(k.rjust(12) for k in RANKING_KEYS)
    for head in HEADS:
        rows = [m for m in report["models"] if head in m["levels"]]
        if not rows:
            continue
        lines += ["", header, "-" * len(header)]
        for m in rows:
            vals = m["levels"][head]
            cells = []
            for k in RANKING_KEYS:
                v = vals.get(k)
                cells.append(("n/a" if v is None else (f"{v:.2f}" if k.startswith("re@") else f"{v:.3f}")).rjust(12))
            lines.append(head.ljust(8) + m["model"].ljust(name_w) + "".join(cells))
    lines += ["", "RE@R: wrong codes read before R % of the true codes are found (lower is better); "
              "Recall@K, NDCG, AUPRC, F1: higher is better."]
    lines += _cut_table(report, name_w)
    if report.get("plots"):
        lines.append("plots: " + ", ".join(report["plots"]))
    return "\n".join(lines)


def _cut_table(report: dict, name_w: int) -> list[str]:
    """Billing codes a coder reads per encounter under each cut rule."""
    keys = ("mean_recommended", "p90_recommended", "recall_at_cut", "precision_at_cut", "re_at_cut")
    header = "rule".ljust(21) + "model".ljust(name_w) + "".join(
        k.rjust(12) for k in ("mean", "p90", "recall", "precision", "RE"))
    lines: list[str] = []
    for m in report["models"]:
        cut = m.get("cut") or {}
        for rule in ("per_encounter", "expected_recall", "per_encounter_floor", "global_k"):
            figures = cut.get(rule)
            if not figures:
                continue
            if not lines:
                target = cut.get("target_recall") or 0.9
                lines = ["", f"billing codes per encounter at the cut (target recall {target:.0%})",
                         header, "-" * len(header)]
            cells = "".join((f"{figures[k]:.3f}" if isinstance(figures.get(k), float) else str(figures.get(k)))
                            .rjust(12) for k in keys)
            lines.append(rule.replace("_", "-").ljust(21) + m["model"].ljust(name_w) + cells)
    fusion = report.get("fusion")
    if fusion:
        lines.append(f"fusion weights {fusion['weights']} bias {fusion['bias']}; ECE before "
                     f"{fusion['ece_before']}, stacked {fusion.get('ece_stacked')}, after the rank-band "
                     f"recalibration {fusion['ece_after']}")
    return lines
