"""Peer comparison: PyHealth's MICRON trained on the same split as our artifact.

    .venv/bin/python benchmarks/pyhealth_micron.py ARTIFACT --data DIR \
        [--pyhealth-python /tmp/pyhealth-venv/bin/python] [--epochs 20]

PyHealth (PyPI `pyhealth`) lives in its own virtualenv so its pins (pandas < 2,
torchvision, rdkit, …) never touch .venv. Set it up once with:

    python3 -m venv /tmp/pyhealth-venv
    /tmp/pyhealth-venv/bin/pip install torch==2.13.0 pyhealth==1.1.6 'numpy<2'

This script encodes the cohort with the artifact's vocabularies and split,
hands the index lists to a worker running under PyHealth's interpreter, which
trains PyHealth's `MICRONLayer` (health net, prescription net, BCE on the last
visit + λ·reconstruction) over per-visit sums of code embeddings (what
PyHealth's `MICRON` model builds from its tokenizers), and returns
probabilities for every test visit. Both tables are printed side by side with
our metrics. PyHealth predicts the full set of each visit with p ≥ 0.5 (its
drug-recommendation convention); Err(add/remove) are measured against its own
previous prediction, as for our models.

Why the layer and not `pyhealth.models.MICRON` itself: in pyhealth 1.1.6 the
model's constructor downloads ATC and DDI tables from PyHealth's cloud bucket
(`ATC().get_ddi(...)`, unreachable offline) and works on ATC-3 drug codes, and
the `pyhealth.models` / `pyhealth.datasets` package imports pull in torchvision,
whose PyPI wheel is built against CUDA torch and fails here with "operator
torchvision::nms does not exist". The worker imports the MICRON module
directly, without those package `__init__`s, and reports any import failure
verbatim.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PYTHON = "/tmp/pyhealth-venv/bin/python"


# ----------------------------------------------------------------------------- worker (PyHealth venv)

def _import_pyhealth_micron():
    """pyhealth.models.micron without executing pyhealth.models/datasets __init__."""
    import importlib
    import types

    import pyhealth

    root = Path(pyhealth.__file__).parent
    for package in ("pyhealth.datasets", "pyhealth.models"):
        stub = types.ModuleType(package)
        stub.__path__ = [str(root / package.split(".")[1])]
        sys.modules[package] = stub
    datasets = sys.modules["pyhealth.datasets"]
    for name in ("sample_dataset", "utils"):
        module = importlib.import_module(f"pyhealth.datasets.{name}")
        datasets.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("_")})
    sys.modules["pyhealth.models"].BaseModel = importlib.import_module(
        "pyhealth.models.base_model").BaseModel
    module = importlib.import_module("pyhealth.models.micron")
    return module.MICRONLayer, pyhealth.__version__


def worker(in_path: str, out_path: str) -> None:
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(1)
    data = json.loads(Path(in_path).read_text())
    try:
        MICRONLayer, version = _import_pyhealth_micron()
    except Exception as exc:  # report exactly why
        Path(out_path).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    n_dx, n_proc, n_med = data["sizes"]
    dim, epochs, seed = data["dim"], data["epochs"], data["seed"]
    torch.manual_seed(seed)

    class PyHealthMicron(nn.Module):
        """Per-visit sums of code embeddings (as PyHealth's MICRON) + PyHealth's MICRONLayer."""

        def __init__(self):
            super().__init__()
            self.dx = nn.EmbeddingBag(n_dx, dim, mode="sum")
            self.proc = nn.EmbeddingBag(n_proc, dim, mode="sum")
            self.layer = MICRONLayer(2 * dim, dim, n_med)

        def embed(self, visits_dx, visits_proc):
            def bag(table, visits):
                flat = [i for v in visits for i in v]
                offsets = np.cumsum([0] + [len(v) for v in visits[:-1]]).tolist()
                if not flat:
                    return torch.zeros(len(visits), dim)
                return table(torch.tensor(flat, dtype=torch.long), torch.tensor(offsets, dtype=torch.long))
            return torch.cat([bag(self.dx, visits_dx), bag(self.proc, visits_proc)], -1)

        def forward(self, patient, upto, target):
            emb = self.embed(patient["dx"][:upto], patient["proc"][:upto]).unsqueeze(0)
            return self.layer(emb, target.unsqueeze(0))

    def multi_hot(meds):
        vector = torch.zeros(n_med)
        vector[[m for m in meds if m]] = 1.0
        return vector

    model = PyHealthMicron()
    optimizer = torch.optim.Adam(model.parameters(), lr=data["lr"])
    # PyHealth's drug-recommendation samples: one per visit, history up to that visit
    samples = [(p, t) for p in data["train"] for t in range(1, len(p["dx"]) + 1)]
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for index in rng.permutation(len(samples)):
            patient, upto = samples[index]
            loss, _ = model(patient, upto, multi_hot(patient["meds"][upto - 1]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds_per_epoch = (time.perf_counter() - started) / max(epochs, 1)
    model.eval()
    probabilities = []
    with torch.no_grad():
        for patient in data["test"]:
            rows = [None]
            for upto in range(2, len(patient["dx"]) + 1):
                _, prob = model(patient, upto, multi_hot([]))
                rows.append(prob[0].tolist())
            probabilities.append(rows)
    params = sum(p.numel() for p in model.parameters())
    Path(out_path).write_text(json.dumps({"probabilities": probabilities, "params": params,
                                          "s_per_epoch": seconds_per_epoch,
                                          "pyhealth": version}))


# ----------------------------------------------------------------------------- driver (.venv)

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", nargs="?", help="medication-change artifact (name or directory)")
    parser.add_argument("--data", help="cohort directory (same as training)")
    parser.add_argument("--pyhealth-python", default=DEFAULT_PYTHON)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    if not args.artifact or not args.data:
        parser.error("ARTIFACT and --data are required")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from fhir_assist.commands.medication_report import format_table
    from fhir_assist.recipes.micron import configure_threads, evaluate_models, load_timelines
    from fhir_assist.tasks.medication.artifact import restore
    from fhir_assist.tasks.medication.encoding import encode_cohort
    from model_zoo import registry
    from model_zoo.metrics.medication import PatientPrediction, medication_change_metrics

    configure_threads()
    artifact = registry.load(args.artifact)
    models, vocabularies, ddi = restore(artifact)
    hyper = artifact.hyperparameters
    data = encode_cohort(load_timelines(args.data),
                                    int(hyper["split_seed"]), vocabularies)
    test = [p for p in data.splits["test"] if len(p) > 1]
    ours = evaluate_models(models, test, ddi)

    if not Path(args.pyhealth_python).exists():
        print(f"PyHealth not run: {args.pyhealth_python} does not exist (see the setup in this "
              "script's docstring)", file=sys.stderr)
        theirs = None
    else:
        def plain(patients):
            return [{"dx": p.dx, "proc": p.proc, "meds": p.meds} for p in patients]

        payload = {"sizes": list(data.sizes), "dim": int(hyper["micron"]["dim"]),
                   "epochs": args.epochs, "seed": int(hyper.get("init_seed", 0)),
                   "lr": float(hyper["micron"]["lr"]) / 2,
                   "train": plain(data.splits["train"]), "test": plain(test)}
        with tempfile.TemporaryDirectory() as tmp:
            in_path, out_path = Path(tmp) / "in.json", Path(tmp) / "out.json"
            in_path.write_text(json.dumps(payload))
            env = dict(os.environ, OMP_NUM_THREADS="1")
            run = subprocess.run([args.pyhealth_python, __file__, "--worker", str(in_path),
                                  str(out_path)], capture_output=True, text=True, env=env)
            if run.returncode != 0 or not out_path.exists():
                print(f"PyHealth worker failed (exit {run.returncode}):\n{run.stderr[-3000:]}",
                      file=sys.stderr)
                theirs = None
            else:
                theirs = json.loads(out_path.read_text())
        if theirs and "error" in theirs:
            print(f"PyHealth MICRON could not be imported: {theirs['error']}", file=sys.stderr)
            theirs = None
    if theirs:
        records = []
        for patient, rows in zip(test, theirs["probabilities"]):
            truth = patient.med_sets()
            predicted, scores = [set(truth[0])], [None]
            for row in rows[1:]:
                probability = np.asarray(row)
                chosen = set(np.flatnonzero(probability >= 0.5).tolist()) - {0}
                predicted.append(chosen)
                scores.append(probability)
            records.append(PatientPrediction(truth, predicted, scores))
        metrics = medication_change_metrics(records, ddi)
        metrics.update(params=theirs["params"], s_per_epoch=theirs["s_per_epoch"])
        ours = {f"PyHealth-MICRON {theirs['pyhealth']}": metrics, **ours}
    print(format_table(len(test), ours, title="test patients (same split as the artifact)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
