#!/usr/bin/env bash
# Runs the whole test suite. First installs what the tests need (scripts/lib/prerequisites.sh: apt-get only for what
# is missing, CRIU into /opt/hands/criu, the official @anthropic-ai/sdk with npm ci) and publishes hands-worker and
# hands-sandboxd with NativeAOT, so the worker and engine tests run the binaries that ship.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
install_prerequisites
prepare_artifacts

echo "==> dotnet test"
dotnet test Hands.slnx --configuration Release --logger "console;verbosity=normal" "$@"
