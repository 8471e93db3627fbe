#!/usr/bin/env bash
# Runs every interop cell for the FastMCP Python client (pinned in requirements.txt)
# against an already running stack. Prints one JSON line per cell on stdout, diagnostics
# on stderr; exits non-zero if any cell failed.
#
# usage: run.sh AS_BASE_URL RS_MCP_URL
#   e.g. run.sh http://127.0.0.1:18001 http://127.0.0.1:18002/mcp
# env:   INTEROP_CACHE   where the virtualenv lives (default ~/.cache/mcp-interop)
#        PYTHON          interpreter to build it with (default python3, 3.11+)
#        INTEROP_MODES   comma-separated subset of cells (default: all but the gateway ones)
#        INTEROP_CIMD_CERT, INTEROP_CIMD_KEY
#                        a certificate for 127.0.0.1 (made by interop/test-ca.sh DIR:
#                        DIR/leaf.pem, DIR/leaf.key) to serve the cimd cell's client ID metadata
#                        document over https with; the stack must trust its CA
#                        (SSL_CERT_FILE=DIR/ca.pem). Without them the cimd cell reports
#                        unsupported (the client takes only https document URLs).
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 AS_BASE_URL RS_MCP_URL" >&2
  exit 2
fi
as_url=$1
rs_url=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${INTEROP_CACHE:-$HOME/.cache/mcp-interop}
python=${PYTHON:-python3}
modes=${INTEROP_MODES:-dcr-public,dcr-client_secret_basic,dcr-client_secret_post,cimd,preregistered,step-up}
venv=$cache/fastmcp-venv
req=$here/requirements.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

# The venv is rebuilt only when requirements.txt changed, so repeated runs stay fast.
setup() {
  if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/.requirements"; then
    return 0
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv" &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 &&
    cp "$req" "$venv/.requirements"
}

# Every requested cell gets a line even when the script could not run or died midway.
fill_missing() {
  local rc=$1 out=$2
  "$python" - "$(sed -n 's/^fastmcp==//p' "$req")" "$modes" "$rc" "$out" <<'EOF'
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
        print(json.dumps({"client": "fastmcp", "version": version, "mode": mode, "result": "fail",
                          "detail": f"no result: client script exited {rc} (see stderr)"}, separators=(",", ":")))
EOF
}

out=$work/cells.out
: >"$out"
if setup; then
  "$venv/bin/python" "$here/fastmcp_interop.py" "$as_url" "$rs_url" --modes "$modes" >"$out"
  rc=$?
else
  echo "fastmcp: virtualenv setup failed" >&2
  rc=setup-failed
fi
fill_missing "$rc" "$out" >>"$out"
cat "$out"
[ "$rc" = 0 ]
