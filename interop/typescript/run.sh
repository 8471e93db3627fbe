#!/usr/bin/env bash
# Runs every TypeScript SDK interoperability cell against an already running stack.
# Usage: run.sh <authorization-server-url> <mcp-url> [mode ...]
#   e.g. run.sh http://127.0.0.1:28001 http://127.0.0.1:28002/mcp
# Prints one JSON line per cell; exits non-zero if any cell fails.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 <authorization-server-url> <mcp-url> [mode ...]" >&2
  exit 2
fi

cd "$(dirname "$0")"

if [ ! -d node_modules/@modelcontextprotocol/sdk ]; then
  # Exactly the locked versions; quiet so stdout stays the cells' JSON lines.
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

exec node client.mjs "$@"
