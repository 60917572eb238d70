"""The local engine: the export read once and spilled to patient shards on disk (`shards`),
each shard coded by one of a pool of processes (one per core, models loaded once per
process) into a result file sorted by patient id, and the result files merged in patient-id
order into the outputs. Memory is bounded by a shard per process, not by the export."""
from __future__ import annotations

import multiprocessing
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from fhir_assist.adapter.report import IngestReport

from .groups import medications_named
from .output import BatchTotals, OutputWriter
from .patient import PatientCoder, PatientResult
from .shards import load_shard, merged_results, shard_count, spill, write_records

# Set in the parent before the pool forks, read by the workers (never pickled).
_MEDICATIONS: dict[str, dict] = {}
_CODER: PatientCoder | None = None


def run_local(options, writer: OutputWriter) -> tuple[BatchTotals, dict]:
    from .job import build_coder, coder_factory, default_workers

    global _MEDICATIONS, _CODER
    workers = max(1, local_workers(options.workers, options.models, default_workers()))
    read = IngestReport()
    # Beside the outputs, not in the system's temp folder: that may be memory, and the shards
    # are about the export's size.
    spill_dir = Path(tempfile.mkdtemp(prefix=".shards-", dir=writer.out))
    try:
        shards, _MEDICATIONS = spill(options.data, spill_dir, shard_count(options.data, workers, options.shard_mb),
                                     read)
        workers = min(workers, len(shards) or 1)
        totals = BatchTotals(read)
        recipe = coder_factory(options)
        bar = _progress(len(shards), options.progress)
        try:
            if workers == 1:
                _CODER = build_coder(recipe)
                done = map(_code_shard, shards)
                results = _finished(bar, done)
            else:
                # fork: the workers see the shared Medications without copying them through pipes
                with multiprocessing.get_context("fork").Pool(workers, _init_worker, (recipe,)) as pool:
                    results = _finished(bar, pool.imap_unordered(_code_shard, shards))
            writer.write(merged_results(results), totals)
        finally:
            if bar is not None:
                bar.close()
    finally:
        _MEDICATIONS, _CODER = {}, None
        shutil.rmtree(spill_dir, ignore_errors=True)
    return totals, {"workers": workers, "shards": len(shards)}


def local_workers(requested: int, models: str | None, cores: int) -> int:
    """`requested` processes, else one per core; one where a model runs on a GPU (`suggest.placement`,
    FHIR_ASSIST_DEVICE: the models load in each forked process, so several would each hold a copy)."""
    from fhir_assist.config import Settings
    from fhir_assist.suggest.model_set import models_directory
    from fhir_assist.suggest.placement import process_count

    return process_count(requested, Settings.from_env().device, models_directory(models), cores)


def _init_worker(recipe) -> None:
    from .job import build_coder

    global _CODER
    _CODER = build_coder(recipe)


def _code_shard(shard: Path) -> tuple[Path, int]:
    """Code every patient of one shard into a result file beside it (sorted by patient id);
    returns (that file, how many patients)."""
    groups = load_shard(shard)
    shard.unlink()
    out = shard.with_suffix(".results")

    def coded() -> Iterator[PatientResult]:
        for patient_id in sorted(groups):
            resources = groups.pop(patient_id)       # a coded patient's resources are let go
            yield _CODER.code(patient_id, resources + medications_named(resources, _MEDICATIONS))

    return out, write_records(out, coded())


def _progress(total: int, wanted: bool):
    if not (wanted and sys.stderr.isatty()):
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="shard", desc="coding", mininterval=0.5)


def _finished(bar, done) -> list[Path]:
    """The result files of every shard, once all are coded (the progress bar counts shards
    and patients as they finish)."""
    paths, patients = [], 0
    for path, n in done:
        paths.append(path)
        patients += n
        if bar is not None:
            bar.update(1)
            bar.set_postfix(patients=patients, refresh=False)
    return paths
