#!/usr/bin/env bash
# The one-command demo: installs what the local sandbox engine needs (scripts/lib/prerequisites.sh: apt-get only for
# what is missing, CRIU into /opt/hands/criu), publishes hands-worker and hands-sandboxd with NativeAOT, builds the
# hands command, and runs `hands demo`: the local control plane, the sandbox engine and a polling orchestrator; a
# scripted agent's session whose tool calls run in the session's own sandbox, streamed to done; then everything is
# removed. Needs root (runc, overlay mounts, network namespaces): re-runs itself with sudo when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E env "PATH=$PATH" "$0" "$@"
fi
source scripts/lib/prerequisites.sh
install_prerequisites
publish_binaries
echo "==> building hands"
dotnet build src/Hands.Cli --configuration Release --nologo -v quiet
exec dotnet src/Hands.Cli/bin/Release/net10.0/hands.dll demo "$@"
