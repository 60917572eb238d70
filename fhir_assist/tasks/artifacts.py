"""Where artifacts are found by name: `$FHIR_ASSIST_MODELS`, then the demo models bundled
with this package. The model zoo's registry knows no package; the location is passed in."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "demo_models"


def search_roots() -> list[Path]:
    """Searched after `$FHIR_ASSIST_MODELS` (which the registry reads itself)."""
    return [BUNDLED_DIR]


def load_artifact(name_or_path: str | os.PathLike, **options: Any):
    """A registry Artifact by directory or by name (see `search_roots`)."""
    from model_zoo import registry

    return registry.load(name_or_path, roots=search_roots(), **options)


def read_config(name_or_path: str | os.PathLike) -> dict:
    from model_zoo import registry

    return registry.read_config(name_or_path, roots=search_roots())
