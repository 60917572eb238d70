#!/usr/bin/env bash
# Rebuild the bundled demo artifacts under fhir_assist/demo_models/ from a synthetic cohort.
#
#   bash scripts/build-demo-models.sh            # all demo models
#   DEMO_COHORT=/tmp/demo-cohort bash scripts/build-demo-models.sh
#   bash scripts/build-demo-models.sh cut-data fusion   # only these parts (micron, coding, cut-data, fusion)
#
# `cut-data` refits, on the same cohort, the calibration and precision curves the per-encounter
# cut and the write-back floor read, into coding artifacts trained before they were stored
# (weights and versions unchanged); `fusion` fits the one fused list on the bundled ranker and
# text coder.
#
# Deterministic: same cohort seed, same split/initialisation seed. Each part writes its
# artifact to a temporary directory first and moves it into place only when training
# succeeded, so a failed run leaves the previous demo model untouched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FA="${FHIR_ASSIST:-$ROOT/.venv/bin/fhir-assist}"
MODELS="$ROOT/fhir_assist/demo_models"
COHORT="${DEMO_COHORT:-$(mktemp -d -t fhir-assist-demo-XXXXXX)}"
DEMO_PATIENTS="${DEMO_PATIENTS:-2000}"
DEMO_SEED="${DEMO_SEED:-20}"

if [[ ! -x "$FA" ]]; then
  echo "build-demo-models: $FA not found; run 'make venv' first" >&2
  exit 1
fi
PARTS="${*:-micron coding fusion}"
wants() { [[ " $PARTS " == *" $1 "* ]]; }
mkdir -p "$MODELS"
if [[ ! -f "$COHORT/Patient.ndjson" ]]; then
  echo "== synthetic cohort: $DEMO_PATIENTS patients, seed $DEMO_SEED -> $COHORT" >&2
  "$FA" synth --patients "$DEMO_PATIENTS" --seed "$DEMO_SEED" --out "$COHORT"
fi

# --- MICRON medication-change model (+ SimNN, DualNN, GRU, Frequency baselines) ---------
if wants micron; then
echo "== micron" >&2
staging="$(mktemp -d "$MODELS/.micron.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
"$FA" train micron --data "$COHORT" --out "$staging/micron" --epochs "${MICRON_EPOCHS:-12}" \
  --seed 0 --device cpu
rm -rf "$MODELS/micron"
mv "$staging/micron" "$MODELS/micron"
rm -rf "$staging"
trap - EXIT
du -sh "$MODELS/micron" >&2
fi

# --- ICD/CCS coding: multitask hierarchy ranker and TF-IDF text coder --------------------
# A small ranker, the text coder's weights as a low-rank product (see
# fhir_assist.recipes.coding.DEMO_OVERRIDES) and no logistic weights keep each artifact under
# 5 MB; `fhir-assist evaluate` refits that baseline when needed. On a shared 2-core machine
# (load ~10) with the 2,000-patient default cohort: text coder 9.6 min, ranker 9.8 min, fusion 1.6 min.
PY="${PYTHON:-$ROOT/.venv/bin/python}"
for kind in icd-ranker text-coder; do
  wants coding || continue
  echo "== $kind" >&2
  staging="$(mktemp -d "$MODELS/.$kind.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$PY" -c '
import sys
from fhir_assist.recipes.coding import build_demo_model
build_demo_model(sys.argv[1], sys.argv[2], sys.argv[3])
' "$kind" "$COHORT" "$staging/$kind"
  rm -rf "$MODELS/$kind"
  mv "$staging/$kind" "$MODELS/$kind"
  rm -rf "$staging"
  trap - EXIT
  du -sh "$MODELS/$kind" >&2
done

# --- what the per-encounter cut needs, for coding artifacts trained without it ------------
if wants cut-data; then
  for kind in icd-ranker text-coder; do
    echo "== cut data: $kind" >&2
    "$PY" -c '
import sys
from fhir_assist.recipes.coding_cut_data import store_cut_data
print(store_cut_data(sys.argv[1], sys.argv[2])["calibration"], file=sys.stderr)
' "$MODELS/$kind" "$COHORT"
  done
fi

# --- one fused, calibrated list: ranker + text coder + previous-visit / problem-list ------
if wants fusion; then
  echo "== coding-fusion" >&2
  staging="$(mktemp -d "$MODELS/.coding-fusion.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  "$FA" train coding-fusion --ranker "$MODELS/icd-ranker" --text-coder "$MODELS/text-coder" \
    --data "$COHORT" --out "$staging/coding-fusion" --device cpu
  rm -rf "$MODELS/coding-fusion"
  mv "$staging/coding-fusion" "$MODELS/coding-fusion"
  rm -rf "$staging"
  trap - EXIT
  du -sh "$MODELS/coding-fusion" >&2
fi
