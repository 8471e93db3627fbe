#!/usr/bin/env bash
# The Rust SDK's cells of the compatibility matrix come from the Rust end-to-end tests that
# drive rmcp's OAuth client; this maps their outcome to the suite's JSON lines.
set -uo pipefail
cd "$(dirname "$0")/.."
version=$(cargo metadata --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="rmcp"))')
run() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast -p "$1" "$2" >&2
  else
    cargo test -p "$1" "$2" >&2
  fi
}
cell() { # cell MODE RESULT DETAIL
  printf '{"client":"rust-rmcp","version":"%s","mode":"%s","result":"%s","detail":"%s"}\n' "$version" "$1" "$2" "$3"
}
status=0
check() { # check MODE PACKAGE FILTER DETAIL
  if run "$2" "$3"; then cell "$1" pass "$4"; else cell "$1" fail "see $3"; status=1; fi
}
check dcr-public e2e rmcp_oauth_client_completes_the_whole_flow ""
cell dcr-client_secret_basic unsupported "rmcp's dynamic registration always registers a public client (token_endpoint_auth_method none)"
cell dcr-client_secret_post unsupported "rmcp's dynamic registration always registers a public client (token_endpoint_auth_method none)"
cell cimd unsupported "rmcp accepts only an https client_metadata_url; documents here are served on loopback http"
check preregistered e2e rmcp_with_a_preregistered_confidential_client ""
check step-up e2e rmcp_step_up_is_signalled_and_completed_by_reauthorizing "rmcp reports the 403 challenge; the application re-authorizes with the wider scope"
exit $status
