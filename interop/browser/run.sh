#!/usr/bin/env bash
# Runs the real-browser check against a running AS + RS.
# Usage: run.sh <issuer> <resource> <screenshot-dir>
set -euo pipefail
if [ "$#" -ne 3 ]; then
  echo "usage: $0 <issuer> <resource> <screenshot-dir>" >&2
  exit 2
fi
cd "$(dirname "$0")"
# Reinstall only when the pinned version is missing, so repeat runs stay fast.
want=$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
# Screenshot dir is resolved against the caller's directory, not this one.
shots=$3
case "$shots" in /*) ;; *) shots="$OLDPWD/$shots" ;; esac
exec node browser.mjs "$1" "$2" "$shots"
