#!/usr/bin/env bash
# Runs the whole test suite. First installs what the tests need (scripts/lib/prerequisites.sh: apt-get only for what
# is missing, the official @anthropic-ai/sdk with npm ci) and publishes hands-worker with NativeAOT, so the worker
# tests run the binary that ships.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
install_prerequisites
prepare_artifacts
export HANDS_WORKER_BINARY="$PWD/artifacts/hands-worker/hands-worker"

echo "==> dotnet test"
dotnet test Hands.slnx --configuration Release --logger "console;verbosity=normal" "$@"
