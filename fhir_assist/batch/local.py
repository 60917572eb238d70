"""The local engine: the export read once, grouped by patient, coded by a pool of processes
(one per core, models loaded once per process), results written in patient-id order."""
from __future__ import annotations

import multiprocessing
import sys
from typing import Iterator

from fhir_assist.adapter.report import IngestReport

from .groups import group_by_patient, keyed_resources, medications_named
from .output import BatchTotals, OutputWriter
from .patient import PatientCoder, PatientResult

CHUNK = 16           # patients per task: amortises the hand-over, keeps the progress bar moving

# Set in the parent before the pool forks, read by the workers (never pickled).
_PATIENTS: dict[str, list[dict]] = {}
_MEDICATIONS: dict[str, dict] = {}
_CODER: PatientCoder | None = None


def run_local(options, writer: OutputWriter) -> tuple[BatchTotals, dict]:
    from .job import build_coder, coder_factory, default_workers

    global _PATIENTS, _MEDICATIONS, _CODER
    read = IngestReport()
    _PATIENTS, _MEDICATIONS = group_by_patient(keyed_resources(options.data, read))
    ids = sorted(_PATIENTS)
    workers = max(1, min(options.workers or default_workers(), len(ids) or 1))
    totals = BatchTotals(read)
    recipe = coder_factory(options)
    bar = _progress(len(ids), options.progress)
    try:
        if workers == 1:
            _CODER = build_coder(recipe)
            writer.write(_tick(bar, (_code(pid) for pid in ids)), totals)
        else:
            chunks = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
            # fork: the workers see the grouped resources without copying them through pipes
            with multiprocessing.get_context("fork").Pool(workers, _init_worker, (recipe,)) as pool:
                results = (r for chunk in pool.imap(_code_chunk, chunks) for r in chunk)
                writer.write(_tick(bar, results), totals)
    finally:
        if bar is not None:
            bar.close()
        _PATIENTS, _MEDICATIONS, _CODER = {}, {}, None
    return totals, {"workers": workers}


def _init_worker(recipe) -> None:
    from .job import build_coder

    global _CODER
    _CODER = build_coder(recipe)


def _code(patient_id: str) -> PatientResult:
    resources = _PATIENTS[patient_id]
    return _CODER.code(patient_id, resources + medications_named(resources, _MEDICATIONS))


def _code_chunk(ids: list[str]) -> list[PatientResult]:
    return [_code(pid) for pid in ids]


def _progress(total: int, wanted: bool):
    if not (wanted and sys.stderr.isatty()):
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="patient", desc="coding", mininterval=0.5)


def _tick(bar, results) -> Iterator[PatientResult]:
    for result in results:
        if bar is not None:
            bar.update(1)
        yield result
