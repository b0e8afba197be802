#!/usr/bin/env bash
# Builds Hands and runs the end-to-end demo: an embedded local control plane, a self-hosted environment,
# a scripted agent and a session streamed to done. Extra arguments go to `hands demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/Hands.Cli --configuration Release --nologo -v quiet
exec dotnet src/Hands.Cli/bin/Release/net10.0/hands.dll demo "$@"
