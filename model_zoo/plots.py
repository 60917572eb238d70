"""PNG plots of ranking evaluations (matplotlib, headless Agg backend).

Inputs are plain dicts, as the coding evaluation computes them:
    curves[model][level] = {x: y}
so the plots can be redrawn from a saved JSON evaluation.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")  # never needs a display; safe in services and CI
import matplotlib.pyplot as plt  # noqa: E402

Curves = Mapping[str, Mapping[str, Mapping[float, float]]]


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, n)
    return math.ceil(n / cols), cols


def _levels(curves: Curves) -> list[str]:
    seen: list[str] = []
    for per_level in curves.values():
        seen += [lvl for lvl in per_level if lvl not in seen]
    return seen


def _per_level_lines(curves: Curves, path: Path, *, xlabel: str, ylabel: str, title: str,
                     xscale_pct: bool = False, ylim=None) -> Path:
    levels = _levels(curves)
    rows, cols = _grid(max(1, len(levels)))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, level in zip(axes.flat, levels):
        for model, per_level in curves.items():
            points = per_level.get(level)
            if not points:
                continue
            xs = sorted(points, key=float)
            ys = [points[x] for x in xs]
            xv = [float(x) * (100 if xscale_pct else 1) for x in xs]
            ax.plot(xv, [float("nan") if y is None else y for y in ys], marker=".", label=model)
        ax.set_title(level)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(levels):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_re_at_r(curves: Curves, path: str | Path) -> Path:
    """RE@R (non-relevant codes read before reaching recall R) against R, per level."""
    return _per_level_lines(curves, Path(path), xlabel="target recall R (%)",
                            ylabel="RE@R (codes read in vain)",
                            title="Rank errors before reaching recall R (lower is better)",
                            xscale_pct=True)


def plot_recall_at_k(curves: Curves, path: str | Path) -> Path:
    """Sample-averaged Recall@K against list length K, per level."""
    return _per_level_lines(curves, Path(path), xlabel="list length K", ylabel="Recall@K",
                            title="Recall@K (higher is better)", ylim=(0, 1.02))


def plot_calibration(bins: Mapping[str, Mapping[str, list]], path: str | Path) -> Path:
    """Reliability diagram: observed frequency against mean predicted probability, per
    model (bins from `model_zoo.metrics.ranking.calibration_bins`)."""
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for model, b in bins.items():
        conf = [c for c, n in zip(b["confidence"], b["count"]) if n]
        freq = [f for f, n in zip(b["frequency"], b["count"]) if n]
        ax.plot(conf, freq, marker="o", label=model)
        edges = list(b["edges"])
        centers = [(a + c) / 2 for a, c in zip(edges[:-1], edges[1:])]
        hist.plot(centers, [max(n, 1) for n in b["count"]], marker=".", label=model)
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration (all levels, test encounters)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    hist.set_yscale("log")
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("labels")
    hist.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
