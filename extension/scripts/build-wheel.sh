#!/usr/bin/env bash
# Builds the Goldiff server wheel (with the default model as package data) into
# extension/wheels/, where the .vsix carries it for the extension's first-run set-up.
# GOLDIFF_PYTHON (or python3) builds it; pip fetches hatchling as the build backend.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
python="${GOLDIFF_PYTHON:-python3}"
if ! ls "$root"/models/goldiff-default*.gguf >/dev/null 2>&1; then
  echo "build-wheel: no models/goldiff-default*.gguf; the wheel would have no default model" >&2
  exit 1
fi
rm -rf "$here/wheels"
mkdir -p "$here/wheels"
"$python" -m pip wheel --no-deps --quiet --wheel-dir "$here/wheels" "$root"
ls -l "$here"/wheels/goldiff-*.whl
