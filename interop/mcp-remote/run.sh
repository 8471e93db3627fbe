#!/usr/bin/env bash
# Runs the mcp-remote interop cells against an already running stack: the official Python MCP
# SDK's stdio client drives mcp-remote (pinned in package-lock.json), which does OAuth itself.
# Prints one JSON line per cell on stdout, diagnostics on stderr; exits non-zero if any cell
# failed.
#
# usage: run.sh AS_BASE_URL RS_MCP_URL
#   e.g. run.sh http://127.0.0.1:18001 http://127.0.0.1:18002/mcp
# The stack should run with AUTHZ_ACCESS_TOKEN_TTL=6 (the third run waits the token out) and
# AUTHZ_CIMD_ALLOW_LOOPBACK=true.
# env:   INTEROP_CACHE      where the virtualenv lives (default ~/.cache/mcp-interop)
#        PYTHON             interpreter to build it with (default python3, 3.11+)
#        INTEROP_MODES      comma-separated subset of cells (default: all)
#        INTEROP_CIMD_CERT, INTEROP_CIMD_KEY
#                           a certificate for 127.0.0.1 (made by interop/test-ca.sh DIR:
#                           DIR/leaf.pem, DIR/leaf.key) to serve the CIMD document over https
#                           with; the stack must trust its CA (SSL_CERT_FILE=DIR/ca.pem).
#                           Without them the cimd cell reports unsupported.
#        INTEROP_DEBUG=1    mcp-remote --debug and every run's stderr on ours
#        INTEROP_KEEP=1     keep the per-cell config dirs, stderr and traces
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 AS_BASE_URL RS_MCP_URL" >&2
  exit 2
fi
as_url=$1
rs_url=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${INTEROP_CACHE:-$HOME/.cache/mcp-interop}
venv=$cache/mcp-remote-venv
req=$here/requirements.txt
modes=${INTEROP_MODES:-dcr-public,dcr-client_secret_basic,dcr-client_secret_post,cimd,preregistered,step-up}
version=$(cd "$here" && node -p "require('./package-lock.json').packages['node_modules/mcp-remote'].version")

setup() {
  # Exactly the locked packages; reinstalled only when the pinned version is missing.
  local have
  have=$(cd "$here" && node -p "try { require('./node_modules/mcp-remote/package.json').version } catch { '' }")
  if [ "$version" != "$have" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 || return 1
  fi
  # The venv is rebuilt only when its requirements file changed, so repeated runs stay fast.
  if ! { [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/.requirements"; }; then
    echo "== installing the pinned Python MCP SDK into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    "${PYTHON:-python3}" -m venv "$venv" &&
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 &&
      cp "$req" "$venv/.requirements"
  fi
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
if setup; then
  "$venv/bin/python" "$here/mcp_remote_interop.py" "$as_url" "$rs_url" --modes "$modes" >"$out"
  rc=$?
else
  echo "mcp-remote: setup failed" >&2
  rc=setup-failed
fi

# Every requested cell gets a line even when the script could not run or died midway.
python3 - "$version" "$modes" "$rc" "$out" >>"$out" <<'PY'
import json, sys
version, modes, rc, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
seen = set()
for line in open(out):
    try:
        seen.add(json.loads(line)["mode"])
    except (ValueError, KeyError):
        pass
for mode in modes:
    if mode and mode not in seen:
        print(json.dumps({"client": "mcp-remote", "version": version, "mode": mode, "result": "fail",
                          "detail": f"no result: driver exited {rc} (see stderr)"}, separators=(",", ":")))
PY
cat "$out"
[ "$rc" = 0 ]
