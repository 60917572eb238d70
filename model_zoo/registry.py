"""Model artifacts: a directory per trained model, loadable by path or by name.

Layout written by `save_artifact`:

    ARTIFACT/
      config.json              task, hyperparameters, vocab_hashes, thresholds, metrics,
                               data_fingerprint, library_versions, created, weights
      weights/NAME.safetensors one file per entry of `weights` (e.g. "micron", "gru")
      vocabularies/NAME.json   the vocabularies the inputs were encoded with
      MODEL_CARD.md            a human-readable summary

`load(name_or_path, expect_vocab_hashes=...)` refuses an artifact whose
vocabularies differ from what the caller encodes with (`VocabularyMismatch`):
a model fed indices from another vocabulary would answer confidently and wrongly.

Names resolve as: an existing directory path, then `$FHIR_ASSIST_MODELS/NAME`,
then `ROOT/NAME` for each of the `roots` the caller passes (the application passes
where its bundled demo models live; this module knows no application package).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

__all__ = [
    "TASKS", "FORMAT_VERSION", "Artifact", "VocabularyMismatch", "save_artifact", "load",
    "read_config", "resolve", "vocabulary_hash", "fingerprint", "library_versions",
]

TASKS = ("medication-change", "icd-coding")
FORMAT_VERSION = 1
_RESERVED = ("format_version", "task", "created", "hyperparameters", "vocab_hashes", "thresholds",
             "metrics", "data_fingerprint", "library_versions", "weights")


class VocabularyMismatch(ValueError):
    """The artifact was trained on other vocabularies than the caller encodes with."""

    def __init__(self, artifact: str, differences: Mapping[str, tuple[str | None, str | None]]):
        self.artifact = artifact
        self.differences = dict(differences)
        parts = [f"{name}: artifact has {_short(found)}, caller expects {_short(expected)}"
                 for name, (expected, found) in sorted(self.differences.items())]
        super().__init__(
            f"artifact {artifact!r} was trained with different vocabularies ("
            + "; ".join(parts) + "). Re-encode with the artifact's vocabularies "
            "(Artifact.vocabularies) or retrain the model on your data.")


def _short(value: str | None) -> str:
    return "none" if value is None else f"{value[:12]}…"


@dataclass
class Artifact:
    """A loaded artifact. `weights[name]` is a CPU state_dict ready for `load_state_dict`."""

    path: Path
    config: dict[str, Any]
    vocabularies: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return self.config.get("hyperparameters", {})

    @property
    def thresholds(self) -> Any:
        return self.config.get("thresholds")

    @property
    def metrics(self) -> Any:
        return self.config.get("metrics")

    @property
    def version(self) -> str:
        """Short identifier for audit trails: directory name + creation time."""
        return f"{self.path.name}@{self.config.get('created', 'unknown')}"


# ----------------------------------------------------------------------------- hashing

def fingerprint(obj: Any) -> str:
    """sha256 of a JSON-serialisable object (key order independent)."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def vocabulary_hash(vocabulary: Any) -> str:
    """The hash `load` compares: a Vocabulary-like object's `.fingerprint`, a dict's
    "fingerprint" entry, or else the sha256 of its token list (same rule as
    `fhir_assist.adapter.encode.Vocabulary.fingerprint`)."""
    if isinstance(vocabulary, str):
        return vocabulary
    value = getattr(vocabulary, "fingerprint", None)
    if isinstance(value, str):
        return value
    if isinstance(vocabulary, Mapping):
        if isinstance(vocabulary.get("fingerprint"), str):
            return vocabulary["fingerprint"]
        if "tokens" in vocabulary:
            return _tokens_hash(list(vocabulary["tokens"]))
    to_dict = getattr(vocabulary, "to_dict", None)
    if callable(to_dict):
        return vocabulary_hash(to_dict())
    raise TypeError(f"cannot hash vocabulary of type {type(vocabulary).__name__}")


def _tokens_hash(tokens: list[str]) -> str:
    payload = json.dumps([str(t) for t in tokens], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _vocabulary_dict(vocabulary: Any) -> dict[str, Any]:
    if isinstance(vocabulary, Mapping):
        return dict(vocabulary)
    to_dict = getattr(vocabulary, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"vocabulary of type {type(vocabulary).__name__} has no to_dict()")


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("numpy", "safetensors", "accelerate", "fhir-assist"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


# ----------------------------------------------------------------------------- save

def save_artifact(
    path: str | os.PathLike,
    *,
    task: str,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    config: Mapping[str, Any],
    vocabularies: Mapping[str, Any],
    thresholds: Any = None,
    metrics: Any = None,
    data_fingerprint: str | None = None,
) -> Path:
    """Write an artifact directory at `path` (replacing an earlier artifact there).

    config: the hyperparameters and anything needed to rebuild the models
        (stored under "hyperparameters" in config.json; must be JSON-serialisable).
    vocabularies: name -> Vocabulary.to_dict() (or a Vocabulary-like object).
    thresholds / metrics: JSON-serialisable; stored as given.
    The directory is written next to `path` first and renamed into place, so a
    crash never leaves a half-written artifact behind.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    target = Path(path)
    if target.exists() and (not target.is_dir() or (any(target.iterdir())
                                                     and not (target / "config.json").exists())):
        raise FileExistsError(f"{target} exists and is not an artifact directory; refusing to "
                              "overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700; an artifact is shared read-only data
    try:
        (staging / "weights").mkdir()
        (staging / "vocabularies").mkdir()
        weight_info = _write_weights(staging, task, weights)
        vocab_hashes = _write_vocabularies(staging, vocabularies)
        document = {
            "format_version": FORMAT_VERSION,
            "task": task,
            "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "hyperparameters": _jsonable(dict(config)),
            "vocab_hashes": vocab_hashes,
            "thresholds": _jsonable(thresholds),
            "metrics": _jsonable(metrics),
            "data_fingerprint": data_fingerprint,
            "library_versions": library_versions(),
            "weights": weight_info,
        }
        _write_json(staging / "config.json", document)
        (staging / "MODEL_CARD.md").write_text(_model_card(target.name, document, vocabularies),
                                               encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_weights(staging: Path, task: str,
                   weights: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, Any]:
    """weights/NAME.safetensors per entry; {name: file, params, sha256} for config.json."""
    from safetensors.torch import save_file

    weight_info: dict[str, Any] = {}
    for name, state in weights.items():
        _check_name(name)
        tensors = {key: value.detach().to("cpu").contiguous().clone()
                   for key, value in state.items()}
        file = staging / "weights" / f"{name}.safetensors"
        save_file(tensors, str(file), metadata={"task": task, "model": name})
        weight_info[name] = {
            "file": f"weights/{name}.safetensors",
            "params": int(sum(t.numel() for t in tensors.values() if t.is_floating_point())),
            "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
        }
    return weight_info


def _write_vocabularies(staging: Path, vocabularies: Mapping[str, Any]) -> dict[str, str]:
    """vocabularies/NAME.json per entry; {name: hash} for config.json."""
    vocab_hashes: dict[str, str] = {}
    for name, vocabulary in vocabularies.items():
        _check_name(name)
        data = _vocabulary_dict(vocabulary)
        vocab_hashes[name] = vocabulary_hash(vocabulary)
        data.setdefault("fingerprint", vocab_hashes[name])
        _write_json(staging / "vocabularies" / f"{name}.json", data)
    return vocab_hashes


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid artifact entry name {name!r}")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def _jsonable(obj: Any) -> Any:
    """Tensors/numpy → lists, non-finite floats → None, so config.json stays valid JSON."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(key): _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(value) for value in obj]
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in config.json")


def _model_card(name: str, document: Mapping[str, Any], vocabularies: Mapping[str, Any]) -> str:
    lines = [f"# {name}", "", f"- task: `{document['task']}`", f"- created: {document['created']}",
             f"- training data fingerprint: `{document.get('data_fingerprint') or 'not recorded'}`",
             "", "## Weights", "", "| model | parameters |", "| --- | ---: |"]
    for model, info in document["weights"].items():
        lines.append(f"| {model} | {info['params']:,} |")
    lines += ["", "## Vocabularies", "", "| name | size | sha256 |", "| --- | ---: | --- |"]
    for vocab_name, vocabulary in vocabularies.items():
        data = _vocabulary_dict(vocabulary)
        size = len(data.get("tokens", [])) if isinstance(data.get("tokens"), list) else "?"
        lines.append(f"| {vocab_name} | {size} | `{document['vocab_hashes'][vocab_name][:16]}…` |")
    lines += ["", "## Hyperparameters", "", "```json",
              json.dumps(document["hyperparameters"], indent=2, sort_keys=True), "```"]
    metrics = document.get("metrics")
    if metrics:
        lines += ["", "## Metrics (held-out test patients)", "", "```json",
                  json.dumps(metrics, indent=2, sort_keys=True), "```"]
    lines += ["", "## Library versions", ""]
    lines += [f"- {lib}: {ver}" for lib, ver in document["library_versions"].items()]
    lines += ["", "## Intended use and limits", "",
              "Decision support only: suggestions are for a clinician or coder to review, never "
              "to act on unreviewed. Performance was measured on the data named by the "
              "fingerprint above; re-evaluate (`fhir-assist evaluate`) on local data before use.",
              ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- load

def _search_roots(extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    roots = []
    env = os.environ.get("FHIR_ASSIST_MODELS")
    if env:
        roots.extend(Path(p) for p in env.split(os.pathsep) if p)
    return roots + [Path(p) for p in extra]


def resolve(name_or_path: str | os.PathLike, roots: Sequence[str | os.PathLike] = ()) -> Path:
    """The artifact directory for a path or a registry name; FileNotFoundError if none."""
    candidate = Path(name_or_path).expanduser()
    if (candidate / "config.json").is_file():
        return candidate
    name = str(name_or_path)
    if candidate.exists():
        raise FileNotFoundError(f"{candidate} has no config.json (not an artifact directory)")
    if os.sep not in name and "/" not in name:
        for root in _search_roots(roots):
            if (root / name / "config.json").is_file():
                return root / name
    searched = ", ".join(str(root) for root in _search_roots(roots)) or "nothing"
    raise FileNotFoundError(f"no artifact {name!r} (not a directory; searched {searched})")


def read_config(name_or_path: str | os.PathLike,
                roots: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """config.json of an artifact, without loading its weights."""
    path = resolve(name_or_path, roots)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path / 'config.json'} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "task" not in config:
        raise ValueError(f"{path / 'config.json'} has no 'task'; not an artifact")
    return config


def load(name_or_path: str | os.PathLike, *,
         expect_vocab_hashes: Mapping[str, Any] | None = None,
         map_location: str | torch.device = "cpu",
         roots: Sequence[str | os.PathLike] = ()) -> Artifact:
    """Load an artifact's config, vocabularies and weights.

    expect_vocab_hashes: name -> hash (or Vocabulary-like object / dict) the caller
        encodes its inputs with; any difference, or a vocabulary the artifact lacks,
        raises VocabularyMismatch before any weights are read.
    Weight files are checked against the sha256 recorded at save time.
    """
    from safetensors.torch import load_file

    path = resolve(name_or_path, roots)
    config = read_config(path)
    if int(config.get("format_version", 1)) > FORMAT_VERSION:
        raise ValueError(f"artifact {path} has format {config['format_version']}; this version of "
                         f"fhir-assist reads up to {FORMAT_VERSION}")
    stored = config.get("vocab_hashes", {})
    if expect_vocab_hashes:
        differences = {}
        for name, expected in expect_vocab_hashes.items():
            expected_hash = vocabulary_hash(expected)
            if stored.get(name) != expected_hash:
                differences[name] = (expected_hash, stored.get(name))
        if differences:
            raise VocabularyMismatch(str(path), differences)
    vocabularies = {}
    for name in stored:
        file = path / "vocabularies" / f"{name}.json"
        vocabularies[name] = json.loads(file.read_text(encoding="utf-8"))
    weights = {}
    for name, info in config.get("weights", {}).items():
        file = path / info["file"]
        if not file.is_file():
            raise FileNotFoundError(f"artifact {path} lacks {info['file']}")
        digest = info.get("sha256")
        if digest and hashlib.sha256(file.read_bytes()).hexdigest() != digest:
            raise ValueError(f"{file} does not match the checksum in config.json (corrupted or "
                             "edited weights)")
        weights[name] = load_file(str(file), device=str(map_location))
    return Artifact(path=path, config=config, vocabularies=vocabularies, weights=weights)
