"""On-disk cache of compact vocabulary indexes.

Building the ICD-10-CM index means parsing the 10 MB CDC tabular XML (seconds); the
compact index it yields loads in a fraction of that. Entries are gzip'd JSON files named
by a key that includes the versions of the packages the data came from, so an upgrade
rebuilds them. Writes go to a temporary file that is renamed into place, so a reader
never sees half a file and two processes building at once both end with a whole one.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

INDEX_FORMAT = 2  # bump when the layout of a cached index changes


def cache_dir() -> Path:
    """`$FHIR_ASSIST_CACHE_DIR`, else `$XDG_CACHE_HOME/fhir-assist`, else `~/.cache/fhir-assist`."""
    explicit = os.environ.get("FHIR_ASSIST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "fhir-assist"


def package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "missing"


def cache_path(name: str, distributions: tuple[str, ...]) -> Path:
    versions = "-".join(f"{d}{package_version(d)}" for d in distributions)
    return cache_dir() / f"{name}-{versions}-f{INDEX_FORMAT}.json.gz"


def _read(path: Path) -> Any | None:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError):
        return None  # truncated or corrupt: rebuild it


def _write_atomically(path: Path, payload: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:
        return  # read-only home or similar: run without a cache
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def load_or_build(name: str, distributions: tuple[str, ...], build: Callable[[], Any]) -> Any:
    """The cached index `name`, building and caching it with `build()` when absent or stale."""
    path = cache_path(name, distributions)
    cached = _read(path)
    if isinstance(cached, dict) and cached.get("format") == INDEX_FORMAT:
        return cached
    payload = build()
    payload["format"] = INDEX_FORMAT
    _write_atomically(path, payload)
    return payload
