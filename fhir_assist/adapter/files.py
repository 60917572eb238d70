"""Reading FHIR files: a Bulk Data export directory, NDJSON (gzipped or not) and Bundle JSON files.

Everything yields plain resource dicts (as parsed from JSON) and never crashes on
messy input when given an `IngestReport`: a bad line, a resource of the wrong shape
or a truncated gzip member is recorded as a problem naming the file:line, resource
and field, and reading goes on.
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from .bundles import iter_bundle_entries
from .report import FhirInputError, IngestReport, record_problem
from .validate import Validator

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")


def _is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


def _is_json(path: Path) -> bool:
    return path.name.lower().endswith(JSON_SUFFIXES)


def discover_files(path: str | os.PathLike) -> list[Path]:
    """The FHIR files of a directory (sorted), or the one file given; see `choose_files`."""
    return choose_files(path)[0]


def choose_files(path: str | os.PathLike) -> tuple[list[Path], int]:
    """(the files to read, how many other FHIR-looking files were left alone).

    A Bulk Data export is its top-level NDJSON files (`Patient.ndjson`, `Encounter_2.ndjson.gz`…):
    when there are any, nothing else is read, since a `stats.json` or a folder of Bundles beside
    them is unrelated or the same resources again. Without top-level NDJSON, the top-level JSON
    (Bundle) files; with neither, the NDJSON files of the subfolders, else their JSON files.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or directory: {root}")
    if root.is_file():
        return [root], 0
    found = sorted(p for p in root.rglob("*")
                   if p.is_file() and not p.name.startswith(".") and (_is_ndjson(p) or _is_json(p)))
    top = [p for p in found if p.parent == root]
    for choice in ([p for p in top if _is_ndjson(p)], [p for p in top if _is_json(p)],
                   [p for p in found if _is_ndjson(p)], found):
        if choice:
            return choice, len(found) - len(choice)
    return [], 0


def parse_json(raw: bytes) -> Any:
    """orjson (several times faster on large exports); what it refuses but the standard
    library reads (NaN, lone surrogates) is read as before, so no line is lost to the switch."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


class _Source:
    """A file opened for reading bytes (gunzipped if *.gz) that can tell how much of
    the file on disk has been consumed, for the progress bar."""

    def __init__(self, path: Path):
        self.raw = open(path, "rb")
        self.stream = gzip.GzipFile(fileobj=self.raw, mode="rb") \
            if path.name.lower().endswith(".gz") else self.raw
        self.reported = 0

    def advance(self, progress) -> None:
        if progress is not None:
            pos = self.raw.tell()
            progress.update(pos - self.reported)
            self.reported = pos

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


def _is_bulk_manifest(doc: Any) -> bool:
    return isinstance(doc, dict) and "resourceType" not in doc and "output" in doc \
        and ("transactionTime" in doc or "request" in doc)


def _iter_ndjson(path: Path, check: Validator, report: IngestReport | None,
                 progress=None, consume=None) -> Iterator[dict]:
    name = str(path)
    lineno = 0
    try:
        with _Source(path) as source:
            lines = enumerate(source.stream, 1)
            if consume is not None:
                lines = _unconsumed(lines, consume, source, progress)
            for lineno, line in lines:
                if consume is None:
                    if lineno % 2048 == 0:
                        source.advance(progress)
                    if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                        line = line[3:]
                if not line.strip():
                    continue
                where = f"{name}:{lineno}"
                try:
                    item = parse_json(line)
                except ValueError as exc:   # JSONDecodeError and UnicodeDecodeError
                    record_problem(FhirInputError(f"invalid JSON ({_short(exc)})", source=where), report,
                             skipped="invalid JSON")
                    continue
                if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                    for resource, src in iter_bundle_entries(item, where, report):
                        ok = check(resource, src)
                        if ok is not None:
                            yield ok
                    continue
                ok = check(item, where)
                if ok is not None:
                    yield ok
            source.advance(progress)
    except (OSError, EOFError, zlib.error, _UnreadableAfter) as exc:
        # Truncated or corrupt gzip: keep what was read, name the file and the line reached.
        if isinstance(exc, _UnreadableAfter):
            lineno, exc = exc.lineno, exc.error
        record_problem(FhirInputError(f"unreadable file after line {lineno} ({_short(exc)})",
                                source=name), report, skipped="unreadable file (rest of it)")


class _UnreadableAfter(Exception):
    """A read error inside `_unconsumed`, with the number of the last line read before it."""

    def __init__(self, lineno: int, error: Exception):
        super().__init__(lineno, error)
        self.lineno, self.error = lineno, error


def _unconsumed(lines, consume, source, progress) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the lines `consume` did not read: the per-line work of the
    loop in `_iter_ndjson` in as few steps as it can be (most lines stop here)."""
    lineno = 0
    try:
        for lineno, line in lines:
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not consume(line):
                yield lineno, line
            break
        for lineno, line in lines:
            if lineno & 2047 == 0:
                source.advance(progress)
            if not consume(line):
                yield lineno, line
    except (OSError, EOFError, zlib.error) as exc:
        raise _UnreadableAfter(lineno, exc) from None


def _iter_json_file(path: Path, check: Validator, report: IngestReport | None,
                    progress=None) -> Iterator[dict]:
    name = str(path)
    try:
        with _Source(path) as source:
            raw = source.stream.read()
            source.advance(progress)
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        doc = parse_json(raw)
    except (OSError, EOFError, zlib.error) as exc:
        record_problem(FhirInputError(f"unreadable file ({_short(exc)})", source=name), report,
                 skipped="unreadable file")
        return
    except ValueError as exc:
        record_problem(FhirInputError(f"invalid JSON ({_short(exc)})", source=name), report,
                 skipped="invalid JSON")
        return
    if _is_bulk_manifest(doc):
        if report is not None:
            report.note("Bulk Data manifest files ignored")
        return
    items: Iterable[tuple[Any, str]]
    if isinstance(doc, list):
        items = ((item, f"{name}:[{i}]") for i, item in enumerate(doc))
    elif isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        items = iter_bundle_entries(doc, name, report)
    else:
        items = [(doc, name)]
    for resource, where in items:
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            nested = iter_bundle_entries(resource, where, report)
        else:
            nested = [(resource, where)]
        for inner, src in nested:
            ok = check(inner, src)
            if ok is not None:
                yield ok


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 120 else text[:117] + "..."


def iter_resources(path: str | os.PathLike, *, validate: str = "fast",
                   report: IngestReport | None = None, progress: bool = False,
                   full_sample: int = 0, consume=None) -> Iterator[dict]:
    """Stream the resources under `path`, one dict at a time.

    `path` is a directory (its top-level Bulk Data `*.ndjson`/`*.ndjson.gz` files — several
    per type are fine — else its Bundle `*.json` files; see `choose_files`) or one such file.
    Problems go into `report` (the resource is skipped, reading goes on); without a
    report the first problem raises `FhirInputError`. `full_sample=N` adds full
    pydantic validation of every Nth resource in "fast"/"none" mode, reported but kept.
    `consume(line)` is offered each NDJSON line first (the timeline builder's compact
    reader); a line it returns True for has been read, validated and counted there and
    is not yielded.
    """
    files, left_alone = choose_files(path)
    if left_alone and report is not None:
        report.note("files beside the export's top-level files not read", left_alone)
    check = Validator(validate, report, full_sample)
    bar = None
    if progress:
        from tqdm import tqdm
        total = sum(f.stat().st_size for f in files)
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="reading FHIR", leave=False,
                   mininterval=0.5)
    try:
        for file in files:
            if report is not None:
                report.files.append(str(file))
            if _is_ndjson(file):
                yield from _iter_ndjson(file, check, report, bar, consume)
            else:
                yield from _iter_json_file(file, check, report, bar)
    finally:
        if bar is not None:
            bar.close()
