#!/usr/bin/env bash
# All CPU contenders on the same workloads in one process tree: the notebook's code, vectorised
# numpy, causalsweep's CPU backend. Build first (README's first command). Usage:
#   bench/run_cpu.sh [OUTDIR] [WORKLOADS]     (WORKLOADS: comma list of single,tutorial4,W)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /tmp/causalsweep-harness-XXXXXX)}
exec /usr/bin/python3 bench/harness.py --build "${BUILD:-build}" --out "$out" --workloads "${2:-single,tutorial4,W}"
