#!/usr/bin/env bash
# The conformance suite's client scenarios run this with the test server's URL as the last
# argument: it signs in with mcp-client (no browser: the suite's authorization server answers
# at once), then lists the tools and calls the first (or add_numbers for tools_call), so that
# per-operation scopes are exercised too. MCP_CLIENT_BIN names the binary.
set -euo pipefail
url=${*: -1}
bin=${MCP_CLIENT_BIN:?MCP_CLIENT_BIN must name the mcp-client binary}
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
export MCP_CLIENT_TOKEN_FILE=$store/tokens.json
# A step-up or a new authorization server mid-session signs in again the same way.
export MCP_CLIENT_BROWSER=fetch
if [ -n "${MCP_CONFORMANCE_PROTOCOL_VERSION:-}" ]; then
  export MCP_CLIENT_PROTOCOL_VERSION=$MCP_CONFORMANCE_PROTOCOL_VERSION
fi
# The metadata document URL the suite expects a client to be configured with.
export MCP_CLIENT_METADATA_URL=https://conformance-test.local/client-metadata.json
args=()
ctx=${MCP_CONFORMANCE_CONTEXT:-}
if [ -n "$ctx" ]; then
  field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]) or "")' "$ctx" "$1"; }
  id=$(field client_id)
  secret=$(field client_secret)
  if [ -n "$id" ]; then args+=(--client-id "$id"); fi
  if [ -n "$secret" ]; then export MCP_CLIENT_SECRET=$secret; fi
fi
"$bin" login "$url" --fetch "${args[@]}" >&2
case "${MCP_CONFORMANCE_SCENARIO:-}" in
  tools_call) "$bin" call "$url" add_numbers '{"a":5,"b":3}' ;;
  *)
    tools=$("$bin" tools "$url")
    printf '%s\n' "$tools"
    name=$(python3 -c 'import json,sys; t=json.load(sys.stdin); print(t[0]["name"] if t else "")' <<<"$tools")
    if [ -n "$name" ]; then "$bin" call "$url" "$name" '{}'; fi ;;
esac
