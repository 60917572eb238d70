"""Artifact save / load / name resolution / vocabulary and checksum checks."""
import json

import pytest
import torch

from fhir_assist.adapter.encode import Vocabulary
from model_zoo import registry


def _save(path, vocab=None, **extra):
    model = torch.nn.Linear(3, 2)
    vocab = vocab or Vocabulary.build([["a", "b"], ["b"]])
    registry.save_artifact(path, task="medication-change", weights={"net": model.state_dict()},
                           config={"dim": 3, "layers": [1, 2]}, vocabularies={"dx": vocab.to_dict()},
                           thresholds={"add": 0.7, "remove": 0.2},
                           metrics={"f1": 0.5, "broken": float("nan")},
                           data_fingerprint="abc123", **extra)
    return model, vocab


def test_round_trip(tmp_path):
    model, vocab = _save(tmp_path / "art")
    files = {p.relative_to(tmp_path / "art").as_posix() for p in (tmp_path / "art").rglob("*")}
    assert {"config.json", "MODEL_CARD.md", "weights/net.safetensors", "vocabularies/dx.json"} <= files
    artifact = registry.load(tmp_path / "art", expect_vocab_hashes={"dx": vocab.fingerprint})
    assert artifact.task == "medication-change"
    assert artifact.hyperparameters == {"dim": 3, "layers": [1, 2]}
    assert artifact.thresholds == {"add": 0.7, "remove": 0.2}
    assert artifact.metrics == {"f1": 0.5, "broken": None}  # NaN stored as null
    assert artifact.config["data_fingerprint"] == "abc123"
    assert artifact.config["vocab_hashes"]["dx"] == vocab.fingerprint
    assert {"torch", "python", "numpy", "safetensors"} <= set(artifact.config["library_versions"])
    assert artifact.config["weights"]["net"]["params"] == 8
    for key, value in model.state_dict().items():
        assert torch.equal(artifact.weights["net"][key], value)
    assert Vocabulary.from_dict(artifact.vocabularies["dx"]) == vocab
    assert registry.read_config(tmp_path / "art")["task"] == "medication-change"
    # Vocabulary objects are accepted as expectations too
    registry.load(tmp_path / "art", expect_vocab_hashes={"dx": vocab})


def test_vocabulary_mismatch_is_refused(tmp_path):
    _save(tmp_path / "art")
    other = Vocabulary.build([["a", "c"]])
    with pytest.raises(registry.VocabularyMismatch) as info:
        registry.load(tmp_path / "art", expect_vocab_hashes={"dx": other.fingerprint})
    assert "dx" in str(info.value) and info.value.differences["dx"][0] == other.fingerprint
    with pytest.raises(registry.VocabularyMismatch):
        registry.load(tmp_path / "art", expect_vocab_hashes={"med": other.fingerprint})


def test_names_resolve_under_models_directory(tmp_path, monkeypatch):
    _save(tmp_path / "models" / "mine")
    monkeypatch.setenv("FHIR_ASSIST_MODELS", str(tmp_path / "models"))
    assert registry.resolve("mine") == tmp_path / "models" / "mine"
    assert registry.load("mine").config["task"] == "medication-change"
    with pytest.raises(FileNotFoundError):
        registry.read_config("no-such-model")


def test_overwrite_and_refusals(tmp_path):
    _save(tmp_path / "art")
    _save(tmp_path / "art")  # replacing an artifact is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]  # no staging leftovers
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        _save(tmp_path / "data")
    with pytest.raises(ValueError):
        registry.save_artifact(tmp_path / "bad", task="unknown", weights={}, config={},
                               vocabularies={})


def test_tampered_weights_are_detected(tmp_path):
    _save(tmp_path / "art")
    weights = tmp_path / "art" / "weights" / "net.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        registry.load(tmp_path / "art")


def test_config_is_plain_json(tmp_path):
    _save(tmp_path / "art")
    config = json.loads((tmp_path / "art" / "config.json").read_text())
    assert config["format_version"] == registry.FORMAT_VERSION
    assert "created" in config and config["hyperparameters"]["layers"] == [1, 2]
