#!/usr/bin/env bash
# Runs the benchmarks (bench/Hands.Bench) and prints p50/p95 tables; results are also written to bench/results/.
# Prepares what they need: the NativeAOT hands-worker and the official SDK (for the side-by-side worker numbers).
# Arguments go to the benchmark: suites (control-plane, worker) and --iterations N.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
install_prerequisites
prepare_artifacts
dotnet run --configuration Release --project bench/Hands.Bench -- "$@"
