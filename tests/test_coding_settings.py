"""Typed training settings of the coding models: one default per setting, stored settings
read back unchanged, older artifacts read with the defaults they were made with."""
from __future__ import annotations

import json
from pathlib import Path

from fhir_assist.tasks.artifacts import BUNDLED_DIR
from fhir_assist.tasks.coding.settings import RankerSettings, TextSettings


def _stored_training(name: str) -> dict:
    config = json.loads((Path(BUNDLED_DIR) / name / "config.json").read_text(encoding="utf-8"))
    return config["hyperparameters"]["training"]


def test_bundled_artifacts_read_back_exactly_what_they_store():
    for name, settings_type in (("icd-ranker", RankerSettings), ("text-coder", TextSettings)):
        stored = _stored_training(name)
        settings = settings_type.from_dict(stored)
        assert {k: v for k, v in settings.to_dict().items() if k in stored} == stored, name


def test_logistic_epochs_differ_by_model_as_training_uses_them():
    assert RankerSettings().logistic_epochs == 25
    assert TextSettings().logistic_epochs == 10


def test_bag_size_is_capped_by_the_vocabulary_and_legacy_artifacts_read_every_token():
    assert TextSettings().bag_size(5000) == 1000
    assert TextSettings().bag_size(300) == 299          # OOV slot excluded
    legacy = TextSettings.from_dict({"max_len": 400})    # written before bow_size was stored
    assert legacy.bow_size is None and legacy.bag_size(300) == 299 and legacy.max_len == 400


def test_unknown_keys_from_newer_artifacts_are_ignored():
    assert RankerSettings.from_dict({"epochs": 3, "not-a-setting": 1}).epochs == 3


def test_text_architecture_defaults_to_tfidf_and_unrecorded_means_bigru():
    assert TextSettings().architecture == "tfidf"
    assert TextSettings().vocabulary_min_count(500) == 2 and TextSettings().vocabulary_min_count(50) == 1
    # what a text artifact written before the TF-IDF coder existed records
    stored = {"embed_dim": 48, "hidden": 32, "epochs": 4, "max_len": 400, "min_count": 3}
    assert TextSettings.from_dict(stored).architecture == "bigru"
    assert TextSettings.from_dict(stored).vocabulary_min_count(500) == 3
    bundled = TextSettings.from_dict(_stored_training("text-coder"))
    assert bundled.architecture == "tfidf" and bundled.tfidf_rank is not None


def test_settings_stored_by_the_dict_era_read_back_unchanged():
    # the training dict an artifact of the settings-dict code records (its defaults + bag size)
    stored = {"architecture": "tfidf", "tfidf_min_count": 2, "tfidf_l2": [1e-6, 1e-5], "tfidf_epochs": 15,
              "embed_dim": 100, "hidden": 32, "dropout": 0.2, "embed_dropout": 0.2, "use_ram": True,
              "epochs": 10, "lr": 1e-2, "batch_size": 32, "patience": 3, "max_len": 1000,
              "min_count": 3, "focal_alpha": 0.75, "focal_gamma": 2.0, "lambda_icd": 0.7,
              "lambda_ccs": 0.3, "pretrain_embeddings": True, "w2v_pairs": 2_000_000,
              "logistic_l2": 1e-4, "logistic_epochs": 10, "bow_size": 812}
    settings = TextSettings.from_dict(stored)
    assert settings.to_dict() == {**stored, "target_recall": 0.9, "tfidf_rank": None}
    assert settings == TextSettings(bow_size=812)         # today's defaults are those


def test_ranker_history_follows_the_artifacts_input_layout():
    from fhir_assist.tasks.artifacts import load_artifact
    from fhir_assist.tasks.coding.artifact import load_ranker

    from fhir_assist.tasks.coding.spaces import FeatureSpace

    assert RankerSettings().history is True
    artifact = load_artifact("icd-ranker")                 # trained with the record inputs
    bundle = load_ranker(artifact)
    assert bundle.features.previous is not None and bundle.settings.history is True
    # an artifact trained before them has no record vocabularies: its layout has no record blocks
    legacy = {k: v for k, v in artifact.vocabularies.items()
              if k not in {name for _, name in FeatureSpace.RECORD_BLOCKS}}
    older = FeatureSpace.from_vocabularies(legacy)
    assert older.previous is None and older.size < bundle.features.size
