"""Markdown tables of `fhir-assist evaluate --json` results, one per artifact, for the README.

    fhir-assist evaluate ART --data DIR --json > ranker-inpatient.json
    python benchmarks/acceptance_tables.py inpatient=ranker-inpatient.json ambulatory=ranker-ambulatory.json

Coding artifacts: one row per hierarchy level, one column per model (the artifact's
model first, then every baseline), each cell `NDCG / RE@90 / Recall@10`, with the
best RE@90 of a row in bold. Medication artifacts: one row per model with Jaccard,
F1, PRAUC, DDI rate and seconds per training epoch.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

LEVELS = ("chapter", "block", "3char", "4char", "billing", "ccs")
MEDICATION_COLUMNS = (("jaccard", "Jaccard", 3), ("f1", "F1", 3), ("prauc", "PRAUC", 3),
                      ("ddi_rate", "DDI rate", 4), ("s_per_epoch", "s/epoch", 2))


def coding_table(result: dict) -> list[str]:
    models = result["models"]
    names = [m["model"] for m in models]
    lines = ["| level | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for level in LEVELS:
        cells = [m["levels"].get(level) for m in models]
        if not any(cells):
            continue
        best = min(c["re@90"] for c in cells if c)
        row = []
        for c in cells:
            if not c:
                row.append("–")
                continue
            re90 = f"{c['re@90']:.1f}"
            row.append(f"{c['ndcg']:.3f} / {'**' + re90 + '**' if c['re@90'] == best else re90}"
                       f" / {c['recall@10']:.3f}")
        lines.append(f"| {level} | " + " | ".join(row) + " |")
    return lines


def medication_table(result: dict) -> list[str]:
    lines = ["| model | " + " | ".join(title for _, title, _ in MEDICATION_COLUMNS) + " |",
             "|---|" + "---|" * len(MEDICATION_COLUMNS)]
    for m in result["models"]:
        cells = [f"{m[key]:.{digits}f}" if isinstance(m.get(key), (int, float)) else "–"
                 for key, _, digits in MEDICATION_COLUMNS]
        lines.append(f"| {m['model']} | " + " | ".join(cells) + " |")
    return lines


def table(result: dict) -> list[str]:
    return medication_table(result) if result.get("task") == "medication-change" else coding_table(result)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", metavar="TITLE=FILE",
                        help="an `evaluate --json` output and the title of its table")
    args = parser.parse_args(argv)
    for item in args.results:
        title, _, path = item.rpartition("=")
        result = json.loads(Path(path).read_text())
        count = result.get("test_encounters") or result.get("test_patients")
        unit = "encounters" if "test_encounters" in result else "patients"
        print(f"**{title or Path(path).stem}** ({count} test {unit})\n")
        print("\n".join(table(result)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
