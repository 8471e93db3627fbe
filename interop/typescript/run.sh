#!/usr/bin/env bash
# Runs every TypeScript SDK interoperability cell against an already running stack.
# Usage: run.sh <authorization-server-url> <mcp-url> [mode ...]
#   e.g. run.sh http://127.0.0.1:28001 http://127.0.0.1:28002/mcp
# Prints one JSON line per cell; exits non-zero if any cell fails.
# env: INTEROP_CIMD_CERT, INTEROP_CIMD_KEY: a certificate for 127.0.0.1 (made by
#   interop/test-ca.sh DIR: DIR/leaf.pem, DIR/leaf.key) to serve the cimd cell's client ID
#   metadata document over https with; the stack must trust its CA (SSL_CERT_FILE=DIR/ca.pem).
#   Without them the cimd cell reports unsupported (the SDK takes only https document URLs).
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
