#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need first (idempotent; apt-get only when something is missing):
# Node.js and npm for the conformance tests against the official @anthropic-ai/sdk, which it installs with npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing ${need[*]}; install them (sudo apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  echo "==> installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "==> installing the official SDK for conformance tests (tests/conformance)"
(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)

echo "==> dotnet test"
dotnet test Hands.slnx --configuration Release --logger "console;verbosity=normal" "$@"
