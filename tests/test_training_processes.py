"""`accelerate launch --num_processes 2 --cpu` trains MICRON and the ICD ranker to the metrics of
one process on the same small cohort: both processes take the same number of steps, gradients
are averaged across them, one process writes the artifact.

Two processes average two batches per step, so they take half the steps of one process per
epoch: the figures agree within a tolerance, not to the last digit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_assist.cli import main as cli_main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("processes-cohort")
    assert cli_main(["synth", "--patients", "120", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    return out


def _train(args: list[str], processes: int, log: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    launch = [] if processes == 1 else [
        "-m", "accelerate.commands.launch", "--cpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    command = [sys.executable, *launch, "-m", "fhir_assist.cli", "train", *args]
    with log.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, log.read_text()[-3000:]


def _free_port() -> int:
    from tests.conftest import free_port
    return free_port()


def _metrics(artifact: Path) -> dict:
    return json.loads((artifact / "config.json").read_text())["metrics"]


def test_micron_trains_on_two_processes_to_the_metrics_of_one(cohort, tmp_path):
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"micron-{processes}"
        _train(["micron", "--data", str(cohort), "--out", str(out), "--epochs", "4"], processes,
               tmp_path / f"micron-{processes}.log")
        runs[processes] = {row["model"]: row for row in _metrics(out)["test"]}
    # both processes prepared the data, one wrote the artifact
    assert (tmp_path / "micron-2.log").read_text().count("training on ") == 2
    one, two = runs[1]["MICRON"], runs[2]["MICRON"]
    for metric in ("f1", "jaccard", "prauc"):
        assert abs(one[metric] - two[metric]) <= TOLERANCE, (metric, one[metric], two[metric])
    # the sceptic's rule does not train: the same on both runs, so the split and data are the same
    assert runs[1]["RepeatLast"]["f1"] == runs[2]["RepeatLast"]["f1"]
    print(f"MICRON test F1 / PRAUC one process {one['f1']:.4f} / {one['prauc']:.4f}, "
          f"two processes {two['f1']:.4f} / {two['prauc']:.4f}")


def test_the_icd_ranker_trains_on_two_processes_to_the_metrics_of_one(cohort, tmp_path):
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"ranker-{processes}"
        _train(["icd-ranker", "--data", str(cohort), "--out", str(out), "--epochs", "6"], processes,
               tmp_path / f"ranker-{processes}.log")
        runs[processes] = _metrics(out)
    assert (tmp_path / "ranker-2.log").read_text().count("patients") >= 2 * (tmp_path / "ranker-1.log").read_text().count("patients")
    one, two = runs[1]["multitask-ranker"], runs[2]["multitask-ranker"]
    for level in ("chapter", "block", "billing"):
        for metric in ("ndcg", "recall@10"):
            assert abs(one[level][metric] - two[level][metric]) <= TOLERANCE, (level, metric, one[level][metric],
                                                                                two[level][metric])
    assert runs[1]["frequency"]["billing"]["ndcg"] == pytest.approx(runs[2]["frequency"]["billing"]["ndcg"])
    print(f"ranker billing NDCG one process {one['billing']['ndcg']:.4f}, two {two['billing']['ndcg']:.4f}")
