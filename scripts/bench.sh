#!/usr/bin/env bash
# Runs the benchmarks (bench/Hands.Bench) and prints p50/p95 tables; results are also written to bench/results/.
# Prepares what they need: the NativeAOT hands-worker and the official SDK (for the side-by-side worker numbers).
# Arguments go to the benchmark: suites (control-plane, worker) and --iterations N.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v clang >/dev/null 2>&1 || need+=(clang)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
dotnet publish src/Hands.Worker --configuration Release --runtime linux-x64 --output artifacts/hands-worker --nologo -v quiet
dotnet run --configuration Release --project bench/Hands.Bench -- "$@"
