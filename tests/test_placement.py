"""Where the served models run (`suggest.placement`): the small models on the CPU and a
language model on the GPU under "auto", a device the machine lacks refused before anything
loads, and one server process wherever a model sits on a GPU (a CUDA context does not survive
fork). The GPU side of these rules is checked on a GPU machine (README, "Serving on a GPU
machine"); here the rules are given the machine's answer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_assist.config import Settings, SettingsError
from fhir_assist.suggest.model_set import MEDICATION, RANKER, load_models
from fhir_assist.suggest.placement import (PlacementError, checked_device, model_device, processes_for,
                                           uses_gpu)
from fhir_assist.tasks.artifacts import BUNDLED_DIR

ROOT = Path(__file__).resolve().parents[1]


def _models_dir(tmp_path: Path, kinds: dict[str, str]) -> Path:
    for slot, kind in kinds.items():
        (tmp_path / slot).mkdir(parents=True)
        (tmp_path / slot / "config.json").write_text(json.dumps({"kind": kind}))
    return tmp_path


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (" CPU ", "cpu"), ("cuda", "cuda"),
                                             ("cuda:1", "cuda:1")])
def test_device_settings_are_normalised(value, expected):
    assert checked_device(value) == expected
    assert Settings(device=expected).device == expected


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "mps", ""])
def test_unknown_devices_are_refused_by_the_settings(value):
    with pytest.raises(SettingsError, match="device must be auto, cpu, cuda or cuda:N"):
        Settings.from_env({"FHIR_ASSIST_DEVICE": value} if value else {"FHIR_ASSIST_DEVICE": " "})


def test_auto_puts_small_models_on_the_cpu_and_a_language_model_on_a_gpu_when_there_is_one():
    assert model_device("auto", language_model=False, cuda_available=True) == "cpu"
    assert model_device("auto", language_model=True, cuda_available=True) == "cuda"
    assert model_device("auto", language_model=True, cuda_available=False) == "cpu"
    assert model_device("cuda:1", language_model=False, cuda_available=True) == "cuda:1"
    assert model_device("cpu", language_model=True, cuda_available=True) == "cpu"


def test_a_gpu_is_used_only_for_a_language_model_slot_or_when_asked(tmp_path):
    with_lm = _models_dir(tmp_path / "lm", {RANKER: "mera"})
    without = _models_dir(tmp_path / "small", {MEDICATION: "micron", RANKER: "icd-coding"})
    assert uses_gpu("auto", with_lm, cuda_available=True)
    assert not uses_gpu("auto", with_lm, cuda_available=False)
    assert not uses_gpu("auto", without, cuda_available=True)
    assert not uses_gpu("auto", BUNDLED_DIR, cuda_available=True)
    assert not uses_gpu("cpu", with_lm, cuda_available=True)
    assert uses_gpu("cuda", without, cuda_available=True)


def test_a_gpu_model_is_served_by_one_process_and_more_are_refused_with_the_way_out():
    assert processes_for(0, gpu=True, automatic=16) == 1
    assert processes_for(1, gpu=True, automatic=16) == 1
    with pytest.raises(PlacementError, match="--device cpu"):
        processes_for(4, gpu=True, automatic=16)
    assert processes_for(0, gpu=False, automatic=16) == 16
    assert processes_for(4, gpu=False, automatic=16) == 4


def test_the_bundled_models_load_on_the_cpu_under_auto():
    models = load_models(None, "auto")
    assert models.ready
    assert models.get(RANKER).suggester.device.type == "cpu"


def test_serve_refuses_a_cuda_device_the_machine_lacks_before_loading_anything():
    # cuda:99: absent on a machine without CUDA and on one with fewer than 100 GPUs alike
    run = subprocess.run([sys.executable, "-m", "fhir_assist.cli", "serve", "--no-auth", "--port", "0",
                          "--device", "cuda:99"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode != 0
    assert "cuda:99" in run.stderr and ("CUDA is not available" in run.stderr or "device(s) exist" in run.stderr)
    assert "Traceback" not in run.stderr


def test_code_batch_refuses_a_cuda_device_the_machine_lacks(tmp_path, monkeypatch, capsys):
    from fhir_assist.cli import main as cli_main

    (tmp_path / "export").mkdir()
    monkeypatch.setenv("FHIR_ASSIST_DEVICE", "cuda:99")
    assert cli_main(["code-batch", "--data", str(tmp_path / "export"), "--out", str(tmp_path / "out")]) == 2
    assert "cuda:99" in capsys.readouterr().err
