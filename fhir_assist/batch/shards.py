"""An export spilled to disk in patient shards, so that coding it never holds all of it.

The export's files come one per resource type, so a patient's resources are spread over every
file. One pass reads the export and appends each resource to the shard file its patient hashes
to (pickled: read back exactly as parsed); a worker then loads one shard, groups it by patient
and codes it, so memory is bounded by a shard, not by the export. Each shard's results are
written sorted by patient id, and merging the shards' result files gives the whole output in
patient-id order. Shared Medication resources stay in memory (they are few and every shard
needs them).
"""
from __future__ import annotations

import heapq
import math
import os
import pickle
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator

from fhir_assist.adapter.report import IngestReport

from .groups import PATIENT, export_files, keyed_resources

SHARD_MB = 16.0            # export megabytes per shard: its parsed resources take about 5× that
GZ_RATIO = 8               # what a gzipped NDJSON file is taken to hold, per byte on disk
FLUSH_BYTES = 1 << 16      # a shard's buffer goes to disk when it reaches this size
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_LENGTH = 8                # bytes of the length before each record


def shard_count(data: str | os.PathLike, workers: int, shard_mb: float = SHARD_MB) -> int:
    """Enough shards to keep each near `shard_mb` of export and every worker busy to the end."""
    size = sum(f.stat().st_size * (GZ_RATIO if f.name.endswith(".gz") else 1) for f in export_files(data))
    return max(4 * max(1, workers), math.ceil(size / (shard_mb * 2 ** 20)))


def shard_of(patient_id: str, shards: int) -> int:
    """The shard a patient's resources go to (stable across processes and runs)."""
    return zlib.crc32(patient_id.encode("utf-8", "surrogatepass")) % shards


class ShardWriter:
    """Appends (patient id, resource) records to `shards` files under `folder`, buffered."""

    def __init__(self, folder: Path, shards: int) -> None:
        self.paths = [folder / f"shard-{i:05d}.pickle" for i in range(shards)]
        self._buffers = [bytearray() for _ in range(shards)]

    def add(self, patient_id: str, resource: dict) -> None:
        i = shard_of(patient_id, len(self.paths))
        buffer = self._buffers[i]
        buffer += pack((patient_id, resource))
        if len(buffer) >= FLUSH_BYTES:
            self._flush(i)

    def close(self) -> list[Path]:
        """Flush everything; the shard files that hold something."""
        for i in range(len(self.paths)):
            self._flush(i)
        return [p for p in self.paths if p.exists()]

    def _flush(self, i: int) -> None:
        if self._buffers[i]:
            # Opened per flush: thousands of shards must not need thousands of open files.
            with open(self.paths[i], "ab") as f:
                f.write(self._buffers[i])
            self._buffers[i] = bytearray()


def spill(data: str | os.PathLike, folder: Path, shards: int, report: IngestReport
          ) -> tuple[list[Path], dict[str, dict]]:
    """Read the export once into shard files; returns (the shard files, {medication id:
    Medication}). What cannot be read or keyed is counted in `report`."""
    writer = ShardWriter(folder, shards)
    medications: dict[str, dict] = {}
    for kind, key, resource in keyed_resources(data, report):
        if kind == PATIENT:
            writer.add(key, resource)
        else:
            medications.setdefault(key, resource)
    return writer.close(), medications


def pack(record) -> bytes:
    """One record as it goes into a shard or result file: its length, then its pickle."""
    data = pickle.dumps(record, protocol=_PROTOCOL)
    return len(data).to_bytes(_LENGTH, "little") + data


def read_records(path: Path) -> Iterator:
    """The records of a shard or result file, in the order they were written."""
    with open(path, "rb") as f:
        while head := f.read(_LENGTH):
            yield pickle.loads(f.read(int.from_bytes(head, "little")))


def load_shard(path: Path) -> dict[str, list[dict]]:
    """{patient id: resources in reading order} of one shard."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for patient_id, resource in read_records(path):
        groups[patient_id].append(resource)
    return groups


def write_records(path: Path, records: Iterable) -> int:
    """Write `records` one after another into `path`; returns how many."""
    n = 0
    with open(path, "wb") as f:
        for record in records:
            f.write(pack(record))
            n += 1
    return n


def merged_results(paths: Iterable[Path]) -> Iterator:
    """The results of every shard's file (each sorted by patient id) as one stream in
    patient-id order."""
    return heapq.merge(*(read_records(p) for p in paths), key=lambda result: result.patient_id)
