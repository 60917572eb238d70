"""The model artifacts behind the services and `code-batch`, loaded once per process.

`--models DIR` (or FHIR_ASSIST_MODELS) names a directory holding `micron/`,
`icd-ranker/` and optionally `text-coder/` and `coding-fusion/` (one calibrated list from
the two coders and the patient's history); without it the bundled demo
artifacts under `fhir_assist/demo_models/` are served. The artifact's kind decides what
serves a slot: `icd-ranker/` may hold a MERA coder and `micron/` a LAMO recommender
(`suggest.loading`). A model that fails to
load does not stop the service: its services answer 503 and /readyz says why (the
`ModelSet` keeps the error).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_assist.tasks.artifacts import BUNDLED_DIR

from .placement import AUTO

log = logging.getLogger(__name__)

MEDICATION = "micron"
RANKER = "icd-ranker"
TEXT_CODER = "text-coder"
FUSION = "coding-fusion"
REQUIRED = (MEDICATION, RANKER)     # the text coder is used only when present (and notes exist)


@dataclass
class LoadedModel:
    name: str
    path: Path
    suggester: Any
    version: str
    task: str
    # Models are called from several server threads; torch modules are not
    # guaranteed re-entrant, so each model is used by one thread at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ModelSet:
    directory: Path
    models: dict[str, LoadedModel] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    load_seconds: float = 0.0

    def get(self, name: str) -> LoadedModel | None:
        return self.models.get(name)

    @property
    def ready(self) -> bool:
        return all(name in self.models for name in REQUIRED)

    def versions(self) -> dict[str, tuple[str, str]]:
        return {name: (m.version, m.task) for name, m in self.models.items()}

    def describe(self) -> dict:
        return {
            "directory": str(self.directory),
            "loaded": {name: m.version for name, m in self.models.items()},
            "errors": dict(self.errors),
        }


def models_directory(models_dir: str | None) -> Path:
    return Path(models_dir).expanduser().resolve() if models_dir else BUNDLED_DIR


def load_models(models_dir: str | None, device: str = AUTO) -> ModelSet:
    """Every model of the directory, each on the device `suggest.placement` picks (`device`:
    auto, cpu, cuda or cuda:N), warmed up."""
    directory = models_directory(models_dir)
    result = ModelSet(directory=directory)
    started = time.perf_counter()
    loaders = {MEDICATION: _load_medication, RANKER: _load_coding, TEXT_CODER: _load_coding,
               FUSION: _load_fusion}
    for name, loader in loaders.items():
        path = directory / name
        if not (path / "config.json").is_file():
            if name in REQUIRED:
                result.errors[name] = f"no artifact at {path}"
            continue
        try:
            suggester = loader(path, device)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, the service keeps running
            log.exception("could not load model %s from %s", name, path)
            result.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        version, task = _version_of(suggester, path)
        result.models[name] = LoadedModel(name, path, suggester, version, task)
        log.info("loaded model %s (%s) from %s, on %s", name, version, path, getattr(suggester, "device", "cpu"))
    result.load_seconds = time.perf_counter() - started
    if result.models:
        warm_up(result)
    return result


def warm_up(models: ModelSet) -> None:
    """One call through each model on a made-up visit before the service says it is ready:
    the first call otherwise pays for lazy imports, torch's first allocations and the FHIR
    model classes of write-back validation (seconds, where a warm call takes milliseconds)."""
    from datetime import datetime, timezone

    from fhir_assist.adapter.visits import Visit
    from fhir_assist.fhir_server import SuggestedCode, build_suggested_condition
    from mappings.codesystems import ICD10CM

    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    for name, model in models.models.items():
        try:
            suggester = model.suggester
            if hasattr(suggester, "warm_up"):      # the language models: one prompt each
                suggester.warm_up(Visit("warm-up", now, now, medications=["6809"], age=60.0,
                                        notes=["patient admitted with chest pain"]))
                continue
            if name == MEDICATION:
                visit = Visit("warm-up", now, now, medications=["6809"], age=60.0)
                suggester.update(suggester.new_state(), visit)
                continue
            if name == FUSION:   # after the ranker and the text coder (the order of `loaders`)
                _warm_fusion(models, suggester, Visit("warm-up", now, now, medications=["6809"], age=60.0,
                                                      notes=["patient admitted with chest pain"]))
                continue
            features = getattr(suggester.bundle, "features", None)
            medications = list(features.medications.tokens[:3]) if features is not None else []
            visit = Visit("warm-up", now, now, medications=medications, age=60.0,
                          notes=["patient admitted with chest pain and shortness of breath"])
            result = suggester.suggest(visit, None, top=10, evidence=False)
            suggester.add_evidence(result, {(s.system, s.code) for s in result.suggestions})
        except Exception:  # noqa: BLE001 - a cold first call is slower, not wrong
            log.warning("warm-up of model %s failed", name, exc_info=True)
    build_suggested_condition("warm-up", "warm-up", SuggestedCode(ICD10CM, "R69"), "warm-up")
    _load_code_tables()
    log.info("models warmed up in %.1f s", time.perf_counter() - started)


def _warm_fusion(models: ModelSet, fused, visit) -> None:
    """One fused list: its first call also maps the text coder's codes onto the ranker's."""
    ranker, text = models.get(RANKER), models.get(TEXT_CODER)
    if ranker is not None and text is not None and fused.fits(ranker.suggester, text.suggester):
        fused.suggest(visit, None, ranker.suggester, text.suggester, top=10, evidence=False)


def _load_code_tables() -> None:
    """The code tables a hook call reads that no model call above did: the CCS/CCSR maps behind
    every diagnosis label of the patient's history, and the procedure code sets the adapter
    checks codes against (over a second on the first call otherwise, in every process)."""
    from mappings import ccs, procedures
    from mappings.codesystems import ICD9CM, ICD10CM, ICD10PCS

    ccs.category_for(ICD10CM, "I10")
    ccs.category_for(ICD9CM, "401.9")
    procedures.procedure_description(ICD10PCS, "0016070")
    procedures.normalize_icd9_procedure("45.13")


def _load_medication(path: Path, device: str):
    from fhir_assist.suggest.loading import load_medication_recommender
    return load_medication_recommender(path, device)


def _load_coding(path: Path, device: str):
    from fhir_assist.suggest.loading import load_coder
    return load_coder(path, device)


def _load_fusion(path: Path, device: str):     # numbers on the CPU: no model to place
    from fhir_assist.suggest.fused import FusedCoder
    return FusedCoder.load(str(path))


def _version_of(suggester: Any, path: Path) -> tuple[str, str]:
    version = None
    for attr in ("model_version", "version"):
        value = getattr(suggester, attr, None)
        if isinstance(value, str) and value:
            version = value
            break
    artifact = getattr(suggester, "artifact", None)
    if version is None and artifact is not None and isinstance(getattr(artifact, "version", None), str):
        version = artifact.version
    task = "unknown"
    try:
        from model_zoo import registry
        config = registry.read_config(str(path))
        task = str(config.get("task", task))
        if version is None:
            version = f"{path.name}@{config.get('created', 'unknown')}"
    except Exception:  # noqa: BLE001 - the version string is informative only
        pass
    return version or path.name, task
