#!/usr/bin/env bash
# Rebuild Goldiff's shipped default model from this repository alone.
#
# On one CUDA GPU (the shipped weights: one H200, about 7 minutes of training) or, much more
# slowly, on a CPU (`--batch-size 8`, about 1M tokens an hour on 2 cores). Every stage is
# resumable: run the same command again after an interruption. The corpus is the permissive
# Python that the installed packages ship (see models/goldiff-default-data.md), so the
# result depends on what this machine has installed.
#
#   scripts/train-default-model.sh [SECONDS]      # default: 600 seconds of training
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-600}"
work="${GOLDIFF_TRAIN_HOME:-$PWD/.goldiff-train}"
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || { echo "no $python: run 'make install' first (or set PYTHON)" >&2; exit 1; }
"$python" -c "import torch, transformers" 2>/dev/null \
  || "$python" -m pip install -e '.[train]'
"$python" -c "import torch; print('training on', 'cuda' if torch.cuda.is_available() else 'cpu')"
"$python" -m goldiff bootstrap --home "$work" --recipe default --dest "$work/out" \
  --quantize Q6_K --time-budget "$budget"
# The new weights are served as the shipped ones are until measured otherwise: copy the
# shipped serving profile beside them, then measure (bench/measure_rest_of_line.py).
for gguf in "$work"/out/goldiff-default-*.gguf; do
  cp models/goldiff-default-Q6_K.serve.json "${gguf%.gguf}.serve.json"
  echo "wrote $gguf; to ship it: cp \"$gguf\" \"${gguf%.gguf}.serve.json\" models/"
done
