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
