"""A cohort directory (Bulk Data NDJSON or FHIR Bundles) → patient timelines, for training
and evaluation. Nothing readable is a TaskError, not a crash."""
from __future__ import annotations

import sys
from pathlib import Path

from fhir_assist.tasks.errors import TaskError


def load_cohort(data: str | Path, progress: bool = True, summary: bool = False):
    """The adapter's Cohort of a directory (timelines and ingest report); with `summary`,
    the ingest summary goes to stderr."""
    from fhir_assist.adapter import timeline

    path = Path(data)
    if not path.exists():
        raise TaskError(f"--data {data}: no such file or directory (the cohort directory does "
                        "not exist)")
    try:
        cohort = timeline.load_cohort(str(path), progress=progress)
    except (OSError, ValueError) as exc:
        raise TaskError(f"cannot read cohort {str(data)!r}: {exc}") from None
    if not cohort.timelines:
        raise TaskError(f"--data {data}: no patients could be read (expected Bulk Data NDJSON "
                        f"or FHIR Bundles; {cohort.report.summary()})")
    if summary:
        print(cohort.report.summary(), file=sys.stderr)
    return cohort
