#!/usr/bin/env bash
# Runs every interoperability cell of the TypeScript SDK's v2 client packages
# (@modelcontextprotocol/client + @modelcontextprotocol/core) against an already running stack.
# Usage: run.sh <authorization-server-url> <mcp-url> [mode ...]
#   e.g. run.sh http://127.0.0.1:28001 http://127.0.0.1:28002/mcp
#        run.sh "$AS" "$GATEWAY_URL" gateway-stdio     # the gateway in front of server-everything
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

# Reinstall only when the locked versions are missing, so repeat runs stay fast; quiet so stdout
# stays the cells' JSON lines.
installed() {
  node -p "const l = require('./package-lock.json').packages;
    ['client', 'core'].every(p => { try {
      return require('./node_modules/@modelcontextprotocol/' + p + '/package.json').version === l['node_modules/@modelcontextprotocol/' + p].version;
    } catch { return false; } })"
}
if [ "$(installed)" != true ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

exec node client.mjs "$@"
