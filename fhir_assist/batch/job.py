"""One batch coding run: options, the models every worker loads, an engine, the outputs."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .output import BatchTotals, OutputWriter
from .patient import PatientCoder
from .shards import SHARD_MB

ENGINES = ("local", "spark")


class BatchError(Exception):
    """A run that cannot start (no such folder, models that do not load)."""


@dataclass(frozen=True)
class BatchOptions:
    data: str
    out: str
    engine: str = "local"
    spark_master: str = "local[*]"
    models: str | None = None           # None: the bundled demo models
    bundles: bool = False
    workers: int = 0                    # 0: every core (local engine)
    recorded: str | None = None         # recordedDate of written Conditions (ISO); default: the run's start
    progress: bool = True
    shard_mb: float = SHARD_MB          # export megabytes per shard the local engine holds at once


def coder_factory(options: BatchOptions):
    """A picklable recipe for the PatientCoder each worker process builds once."""
    return (options.models, options.bundles, options.recorded)


def build_coder(recipe) -> PatientCoder:
    """The models loaded (once per process) into a PatientCoder; the same on every engine."""
    models_dir, bundles, recorded = recipe
    import torch

    from fhir_assist.config import Settings
    from fhir_assist.suggest.model_set import RANKER, load_models
    from fhir_assist.suggest.visit_codes import VisitCoder
    from model_zoo.row_inference import single_thread_blas

    # One thread per process: the engines run one process per core, and a fixed thread
    # count keeps every score the same bits on every engine.
    torch.set_num_threads(1)
    single_thread_blas()
    settings = Settings.from_env()
    loaded = load_models(models_dir, settings.device)
    if loaded.get(RANKER) is None:
        raise BatchError(f"the {RANKER} model did not load: {loaded.errors.get(RANKER, 'not found')}")
    when = datetime.fromisoformat(recorded.replace("Z", "+00:00")) if recorded else None
    return PatientCoder(VisitCoder(loaded, settings), bundles=bundles, recorded=when)


def run_batch(options: BatchOptions) -> dict:
    """Code every encounter of the export at `options.data`; returns the summary (also
    written to `out/summary.json`)."""
    if options.engine not in ENGINES:
        raise BatchError(f"unknown engine {options.engine!r} (one of {', '.join(ENGINES)})")
    if not Path(options.data).exists():
        raise BatchError(f"no such file or directory: {options.data}")
    if not options.recorded:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        options = BatchOptions(**{**options.__dict__, "recorded": now})
    started = time.perf_counter()
    writer = OutputWriter(options.out, options.bundles)
    try:
        if options.engine == "local":
            from .local import run_local
            totals, details = run_local(options, writer)
        else:
            from .spark import run_spark
            totals, details = run_spark(options, writer)
    except BaseException:
        writer.abandon()
        raise
    summary = totals.summary(engine=options.engine, **details, data=str(options.data),
                             seconds=round(time.perf_counter() - started, 3), bundles=options.bundles)
    writer.finish(summary)
    return summary


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


__all__ = ["BatchError", "BatchOptions", "BatchTotals", "ENGINES", "build_coder", "coder_factory", "run_batch"]
