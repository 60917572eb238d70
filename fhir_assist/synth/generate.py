"""Write a reproducible synthetic cohort as Bulk Data style NDJSON.

One file per resource type (Patient.ndjson, Encounter.ndjson, Condition.ndjson,
Procedure.ndjson, MedicationRequest.ndjson, DocumentReference.ndjson), one
resource per line, as a FHIR server's `$export` writes them. The same
(patients, seed, icd_version, profile) gives byte-identical files; the first N patients
of a larger cohort are the same patients as a cohort of N.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

from tqdm import tqdm

from . import ICD_VERSIONS, PROFILES, knowledge
from .ambulatory import simulate_ambulatory
from .ambulatory_resources import AmbulatoryWriter
from .notes import discharge_note
from .resources import ResourceWriter
from .simulate import prepare, simulate_patient

RESOURCE_TYPES = ("Patient", "Encounter", "Condition", "Procedure", "MedicationRequest", "DocumentReference")

# Dates every visit falls within: the ICD-10-CM era, the ICD-9-CM era (before the October 2015
# switch), or straddling the switch.
WINDOWS = {
    "icd10cm": (date(2016, 1, 1), date(2024, 12, 31)),
    "icd9cm": (date(2004, 1, 1), date(2015, 9, 15)),
    "mixed": (date(2011, 1, 1), date(2020, 12, 31)),
}
BLOCK = 250          # patients rendered (and written) together


def generate_cohort(patients: int, seed: int, out_dir, progress: bool = True,
                    icd_version: str = "icd10cm", workers: int | None = None,
                    profile: str = "inpatient") -> dict:
    """Generate `patients` patients into `out_dir`; returns a summary (counts, timing, DDI rate).

    `workers` processes render blocks of patients in parallel (default: one per CPU, at
    most 4); the files are the same whatever the number of workers. `profile` is
    "inpatient" (MIMIC-III-calibrated stays) or "ambulatory" (an outpatient-heavy EHR export).
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if icd_version not in ICD_VERSIONS:
        raise ValueError(f"icd_version must be one of {', '.join(ICD_VERSIONS)}, not {icd_version!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    began = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prepare(knowledge.load())   # compiled once here, inherited by forked workers
    blocks = [(seed, icd_version, profile, start, min(start + BLOCK, patients)) for start in range(0, patients, BLOCK)]
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    workers = max(1, min(workers, len(blocks)))

    counts: Counter = Counter()
    visits = ddi_visits = icd9_unmapped = 0
    temporary = {t: out / f".{t}.ndjson.partial" for t in RESOURCE_TYPES}
    handles = {t: open(path, "w", encoding="utf-8", newline="\n") for t, path in temporary.items()}
    pool = None
    try:
        if workers > 1:
            pool = _pool(workers)
            rendered = pool.imap(_render_block, blocks)
        else:
            rendered = map(_render_block, blocks)
        with tqdm(total=patients, unit="patient", desc="synth", file=sys.stderr, disable=not progress,
                  mininterval=0.5) as bar:
            for (_, _, _, start, stop), block in zip(blocks, rendered):
                for rtype in RESOURCE_TYPES:
                    text, n = block["lines"][rtype]
                    if n:
                        handles[rtype].write(text)
                        counts[rtype] += n
                visits += block["visits"]
                ddi_visits += block["ddi_visits"]
                icd9_unmapped += block["icd9_unmapped"]
                bar.update(stop - start)
    except BaseException:
        for handle in handles.values():
            handle.close()
        for path in temporary.values():
            path.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    for handle in handles.values():
        handle.close()
    # Only complete files take the real names (an interrupted run leaves no half cohort behind).
    for rtype, path in temporary.items():
        os.replace(path, out / f"{rtype}.ndjson")

    seconds = time.perf_counter() - began
    return {
        "out_dir": str(out),
        "patients": patients,
        "seed": seed,
        "icd_version": icd_version,
        "profile": profile,
        "visits": visits,
        "resources": {t: counts[t] for t in RESOURCE_TYPES},
        "ddi_visit_rate": round(ddi_visits / visits, 4) if visits else 0.0,
        "icd9_unmapped_codes": icd9_unmapped,
        "table_entries_left_out": len(knowledge.load().dropped),
        "workers": workers,
        "seconds": round(seconds, 2),
    }


def _pool(workers: int):
    # fork shares the compiled tables with the workers for free; elsewhere each worker compiles them.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    return multiprocessing.get_context(method).Pool(workers)


@functools.lru_cache(maxsize=4)
def _writer(seed: int, icd_version: str, profile: str = "inpatient") -> ResourceWriter:
    cls = AmbulatoryWriter if profile == "ambulatory" else ResourceWriter
    return cls(knowledge.load(), seed, icd_version)


def _render_block(block: tuple) -> dict:
    """NDJSON text of patients [start, stop): depends only on (seed, icd_version, profile, indices)."""
    seed, icd_version, profile, start, stop = block
    k = knowledge.load()
    writer = _writer(seed, icd_version, profile)
    simulate = simulate_ambulatory if profile == "ambulatory" else simulate_patient
    unmapped_before = writer.icd9_unmapped
    window = WINDOWS[icd_version]
    buffers: dict[str, list[str]] = {t: [] for t in RESOURCE_TYPES}
    visits = ddi_visits = 0
    for i in range(start, stop):
        record = simulate(k, seed, i, window)
        note_rng = random.Random(f"fhir-assist-synth:notes:{seed}:{i}")
        buffers["Patient"].append(writer.patient(record))
        visits += len(record.visits)
        ddi_visits += sum(visit.ddi_pairs > 0 for visit in record.visits)
        if profile == "ambulatory":
            rendered = [writer.record(record, lambda visit: discharge_note(k, record, visit, note_rng))]
        else:
            rendered = (writer.visit(record, visit, discharge_note(k, record, visit, note_rng))
                        for visit in record.visits)
        for lines_by_type in rendered:
            for rtype, lines in lines_by_type.items():
                buffers[rtype].extend(lines)
    lines = {t: ("".join(line + "\n" for line in buf), len(buf)) for t, buf in buffers.items()}
    return {"lines": lines, "visits": visits, "ddi_visits": ddi_visits,
            "icd9_unmapped": writer.icd9_unmapped - unmapped_before}
