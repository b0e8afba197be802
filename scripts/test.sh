#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need first (idempotent; apt-get only when something is missing):
# Node.js and npm (the official @anthropic-ai/sdk conformance peer, installed with npm ci), clang and zlib (NativeAOT
# publish of hands-worker), ripgrep (the grep tool's fast path).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
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

echo "==> publishing hands-worker with NativeAOT (warnings are errors)"
dotnet publish src/Hands.Worker --configuration Release --runtime linux-x64 --output artifacts/hands-worker --nologo -v quiet
export HANDS_WORKER_BINARY="$PWD/artifacts/hands-worker/hands-worker"

echo "==> dotnet test"
dotnet test Hands.slnx --configuration Release --logger "console;verbosity=normal" "$@"
