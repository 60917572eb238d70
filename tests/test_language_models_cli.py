"""`train lm-base|mera|lamo` and `evaluate --json` end to end on a small synthetic cohort (CPU).

The settings are the smallest that exercise every stage; the figures they produce are not a
benchmark (README: "Language-model entries" has the tables of full runs)."""
from __future__ import annotations

import json

import pytest

from fhir_assist.cli import main as cli_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-cohort")
    assert cli_main(["synth", "--patients", "60", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def base_model(tiny_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-base") / "base"
    assert cli_main(["train", "lm-base", "--data", str(tiny_cohort), "--out", str(out),
                     "--layers", "1", "--width", "64", "--steps", "20"]) == 0
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    return out


def test_mera_trains_from_a_local_base_and_evaluates(tiny_cohort, base_model, tmp_path, capsys):
    artifact = tmp_path / "mera"
    assert cli_main(["train", "mera", "--data", str(tiny_cohort), "--out", str(artifact),
                     "--base-model", str(base_model), "--lora-r", "4", "--epochs", "1"]) == 0
    config = json.loads((artifact / "config.json").read_text())
    assert config["kind"] == "mera" and config["task"] == "icd-coding"
    trainable = config["report"]["trainable"]
    assert 0 < trainable["trainable"] < trainable["parameters"]       # LoRA: a fraction trains
    memory = config["report"]["memorisation"]
    assert memory["codes"] > 0 and 0 <= memory["description_to_code"] <= 1
    capsys.readouterr()
    assert cli_main(["evaluate", str(artifact), "--data", str(tiny_cohort), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    models = report["test"]["models"]
    assert {"mera", "frequency", "previous-visit"} <= set(models)
    assert {"chapter", "billing"} <= set(models["mera"])
    assert 0 <= models["mera"]["billing"]["ndcg"] <= 1
    cut = report["test"]["cut"]
    assert cut["eov"]["mean_recommended"] >= 1 and "expected_recall_0.9" in cut


def test_lamo_trains_with_lora_and_reports_drug_counts(tiny_cohort, base_model, tmp_path, capsys):
    artifact = tmp_path / "lamo"
    assert cli_main(["train", "lamo", "--data", str(tiny_cohort), "--out", str(artifact),
                     "--base-model", str(base_model), "--lora-r", "4", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert cli_main(["evaluate", str(artifact), "--data", str(tiny_cohort), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    lamo, repeat_last = report["test"]["models"]["lamo"], report["test"]["models"]["RepeatLast"]
    for row in (lamo, repeat_last):
        assert {"jaccard", "f1", "ddi_rate", "drug_count"} <= set(row)
    assert report["test"]["true_drug_count"] > 0


def test_a_missing_base_model_is_a_clear_error(tiny_cohort, tmp_path, capsys):
    code = cli_main(["train", "mera", "--data", str(tiny_cohort), "--out", str(tmp_path / "m"),
                     "--base-model", str(tmp_path / "nowhere")])
    assert code != 0
    assert "cannot load a causal LM" in capsys.readouterr().err


def test_a_base_model_loads_without_hub_kernels(base_model):
    """transformers swaps in layers from the Hub's kernel repositories by default on a GPU
    (fetched at run time, or refused where the `kernels` package is absent): a hospital's
    offline server must run the model as stored."""
    import torch

    from model_zoo.llm.base import load

    model, _ = load(base_model, torch.device("cpu"))
    assert model.use_kernels is False
