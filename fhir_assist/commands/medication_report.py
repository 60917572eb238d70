"""Tables of medication-change results (`train micron`, `evaluate`): Table-2 style rows and
the chosen add/stop cut-offs."""
from __future__ import annotations

import math

import numpy as np

from fhir_assist.recipes.micron import METRIC_KEYS, MODEL_ORDER


def describe_thresholds(thresholds) -> str:
    """One line on the chosen δ1/δ2 (global pair, per-medicine spread, removal recall)."""
    text = (f"thresholds ({thresholds.rule}): δ1 = {thresholds.add:.3f}, δ2 = {thresholds.remove:.3f}")
    if thresholds.mode == "per-medicine" and thresholds.per_medicine_remove:
        adds = np.asarray(thresholds.per_medicine_add[1:])
        removes = np.asarray(thresholds.per_medicine_remove[1:])
        spread = (f"δ1 {adds.min():.2f} for all" if adds.min() == adds.max()
                  else f"δ1 {adds.min():.2f}–{adds.max():.2f}")
        text += (f"; per medicine {spread}, δ2 {removes.min():.2f}–"
                 f"{removes.max():.2f}, {int((removes > 0).sum())}/{removes.size} medicines can be "
                 f"stopped, {thresholds.tuned_medicines} tuned alone")
    if thresholds.removal_recall is not None:
        text += f"; validation stops caught {thresholds.removal_recall:.1%}"
    if thresholds.validation_ddi_rate is not None:
        text += f"; validation DDI rate {thresholds.validation_ddi_rate:.4f}"
    if thresholds.ddi_stop_below > 0:
        text += f"; of two interacting medicines, one scored below {thresholds.ddi_stop_below:g} is stopped"
    return text


def format_table(patients: int, results: dict[str, dict[str, float]], *, title: str,
                 seeds: int = 1) -> str:
    """Table-2-style text table."""
    headers = ("Model", "DDI", "Jaccard", "F1", "PRAUC", "Err(add)", "Err(remove)", "Removed",
               "Params", "s/epoch")
    lines = []
    names = [n for n in MODEL_ORDER if n in results] + [n for n in results if n not in MODEL_ORDER]
    for name in names:
        metrics = results[name]
        cells = [name]
        for key in METRIC_KEYS:
            value = metrics[key]
            digits = 3 if key.startswith("err") else 0 if key == "removals" else 4
            text = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
                else f"{value:.{digits}f}"
            if seeds > 1 and f"{key}_std" in metrics and text != "n/a":
                text += f" ± {metrics[key + '_std']:.{digits}f}"
            cells.append(text)
        cells.append(f"{int(metrics['params']):,}")
        cells.append(f"{metrics['s_per_epoch']:.2f}s" if metrics["s_per_epoch"] else "-")
        lines.append(cells)
    widths = [max(len(headers[i]), *(len(row[i]) for row in lines)) for i in range(len(headers))]
    out = [f"Medication change on {patients} {title}" +
           (f", mean ± std over {seeds} seeds" if seeds > 1 else ""),
           "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for row in lines:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out)
