#!/usr/bin/env bash
# The checks a CPU machine cannot run, on a machine with an NVIDIA GPU (CI has none):
#
#   bash scripts/gpu-checks.sh              # after `make venv` with the CUDA build of torch
#   PYTHON=python3 bash scripts/gpu-checks.sh
#
# 1. the tests of the GPU paths: training (MICRON, the ranker, the language models) picks the GPU
#    by itself there, the language models are served over HTTP from it (one process), and the
#    placement rules hold on a machine that has CUDA;
# 2. one hook call in process with the models on the CPU and on the GPU (what --device buys);
# 3. the ranker's batched throughput on the GPU against the CPU.
# Their figures are in the README ("Serving on a GPU machine", "On a GPU machine").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"

"$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch: these checks need a GPU machine (and torch's CUDA build)")
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
EOF

echo "== tests of the GPU paths"
"$PY" -m pytest -q tests/test_placement.py tests/test_serve_language_models.py tests/test_micron.py \
    tests/test_icd_ranker.py tests/test_language_models_cli.py tests/test_train_micron_cli.py tests/test_coding_models.py

echo "== one hook call: models on the CPU and on the GPU"
"$PY" benchmarks/cds_device.py

echo "== ranker throughput: GPU, then CPU"
"$PY" benchmarks/ranker_throughput.py --device cuda --stays 50000
"$PY" benchmarks/ranker_throughput.py --device cpu --stays 20000
