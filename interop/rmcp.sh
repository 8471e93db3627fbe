#!/usr/bin/env bash
# The Rust SDK's cells of the compatibility matrix come from the Rust end-to-end tests that
# drive rmcp's OAuth client; this maps their outcome to the suite's JSON lines.
set -uo pipefail
cd "$(dirname "$0")/.."
version=$(cargo metadata --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="rmcp"))')
run() { # run PACKAGE FILTER [CARGO ARGS]
  local package=$1 filter=$2; shift 2
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast -p "$package" "$@" "$filter" >&2
  else
    cargo test -p "$package" "$@" "$filter" >&2
  fi
}
cell() { # cell MODE RESULT DETAIL
  printf '{"client":"rust-rmcp","version":"%s","mode":"%s","result":"%s","detail":"%s"}\n' "$version" "$1" "$2" "$3"
}
status=0
check() { # check MODE PACKAGE FILTER DETAIL [CARGO ARGS]
  local mode=$1 package=$2 filter=$3 detail=$4; shift 4
  if run "$package" "$filter" "$@"; then cell "$mode" pass "$detail"; else cell "$mode" fail "see $filter"; status=1; fi
}
check dcr-public e2e rmcp_oauth_client_completes_the_whole_flow ""
cell dcr-client_secret_basic unsupported "rmcp's dynamic registration always registers a public client (token_endpoint_auth_method none)"
cell dcr-client_secret_post unsupported "rmcp's dynamic registration always registers a public client (token_endpoint_auth_method none)"
cell cimd unsupported "rmcp accepts only an https client_metadata_url, and its cells run in the Rust end-to-end tests, whose metadata documents are served on loopback http (the other clients' cells serve theirs over https from a test CA)"
check preregistered e2e rmcp_with_a_preregistered_confidential_client ""
check step-up e2e rmcp_step_up_is_signalled_and_completed_by_reauthorizing "rmcp reports the 403 challenge; the application re-authorizes with the wider scope"
# The gateway columns: server-everything behind the gateway (installed by interop/run).
check gateway-stdio e2e everything::server_everything_over_stdio_behind_the_gateway "" --features everything
check gateway-http e2e everything::server_everything_over_streamable_http_behind_the_gateway "" --features everything
exit $status
