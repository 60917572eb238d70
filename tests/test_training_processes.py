"""Two CPU processes (torchrun, the launcher under `accelerate launch --multi_gpu`) train MICRON
and the ICD ranker to the metrics of one process on the same small cohort: each process takes
half the rows of every batch, gradients are averaged across them, one process writes the artifact.

Floating-point sums in another order (and dropout masks drawn per process) keep the figures from
agreeing to the last digit: they agree within a tolerance."""
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
    # gloo's interface choice by host name is unreliable on CI machines: loopback
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    # On CPUs `accelerate launch --cpu` starts one process unless mpirun is given; torchrun (what
    # `accelerate launch --multi_gpu` runs) starts them, and accelerate reads its environment.
    launch = [] if processes == 1 else [
        "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
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


def test_each_process_takes_its_share_of_every_batch():
    import torch

    from model_zoo.train import _epoch_batches

    batches = [{"x": torch.arange(10).reshape(5, 2), "y": torch.arange(5)}, {"x": torch.zeros(1, 2), "y": torch.ones(1)},
               [torch.ones(3)]]
    shares = [_epoch_batches(batches, epoch=1, seed=0, rank=rank, world=2) for rank in (0, 1)]
    one = _epoch_batches(batches, epoch=1, seed=0, rank=0, world=1)
    for position, whole in enumerate(one):
        first, second = shares[0][position], shares[1][position]
        if isinstance(whole, dict) and len(whole["y"]) >= 2:
            # the same batch in the same place for both, its rows split between them, none lost
            assert torch.equal(torch.cat([first["y"], second["y"]]), whole["y"])
            assert torch.equal(torch.cat([first["x"], second["x"]]), whole["x"])
        else:
            # a one-row batch, or one that is not a dict of tensors: both take it whole
            assert first is whole and second is whole
