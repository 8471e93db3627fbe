#!/usr/bin/env bash
# Makes a throwaway CA and a certificate for 127.0.0.1 signed by it, in DIR, so a driver's cimd
# cell can serve its client ID metadata document over https: the clients take only https
# client metadata URLs (the TypeScript SDK's clientMetadataUrl, the Python SDK's and FastMCP's
# client_metadata_url, mcp-remote's --client-metadata-url). Start the stack with
# SSL_CERT_FILE=DIR/ca.pem (the authorization server then trusts the CA when it fetches the
# document; AUTHZ_CIMD_ALLOW_LOOPBACK=true lets it fetch from 127.0.0.1), then run the driver's
# run.sh with INTEROP_CIMD_CERT=DIR/leaf.pem INTEROP_CIMD_KEY=DIR/leaf.key.
# usage: test-ca.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=mcp-stack interop test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext 2>/dev/null
rm -f leaf.csr leaf.ext ca.srl
