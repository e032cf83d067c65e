#!/usr/bin/env bash
# causalsweep's CPU backend against the notebook's own Python code (numpy + scikit-learn, the
# tutorials' functions, bench/peers/notebook.py), measured in one run on the same cores:
#   one network: n = 100, T = 5000, eta = 2, correlation + lasso + ols + iv at 5 observed ratios;
#   the embedded default sweep (50 networks, n = 40, T = 20000).
# Prints a table and writes the raw JSON next to it. Usage: bench/run_cpu_bench.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
out=${1:-$(mktemp -d /tmp/causalsweep-bench-XXXXXX)}
mkdir -p "$out"
threads=$(nproc)
[ -x "$build/causalsweep" ] && [ -x "$build/bench/bench_network" ] || { echo "build first (README)" >&2; exit 2; }

echo "[1/4] notebook Python, one network (n=100, T=5000) ..." >&2
/usr/bin/python3 bench/peers/notebook.py --n 100 --timesteps 5000 --seeds 1 --json "$out/notebook.json" 2>/dev/null

echo "[2/4] causalsweep, one network on one thread (median of 5) ..." >&2
"$build/bench/bench_network" 100 5000 5 > "$out/causalsweep_network.json"

echo "[3/4] causalsweep, 16 such networks on all $threads cores ..." >&2
cat > "$out/throughput.toml" <<TOML
name = "bench_throughput"
[model]
n_neurons = 100
timesteps = 5000
eta = 2.0
observed_ratio = [1.0, 0.8, 0.6, 0.4, 0.2]
[seeds]
count = 16
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
TOML
rm -rf "$out/throughput" "$out/default"
"$build/causalsweep" run "$out/throughput.toml" -q --backend cpu --threads "$threads" -o "$out/throughput" > /dev/null

echo "[4/4] causalsweep, the embedded default sweep ..." >&2
"$build/causalsweep" run -q --backend cpu --threads "$threads" -o "$out/default" > /dev/null

/usr/bin/python3 - "$out" "$threads" <<'PY'
import json, sys, platform
out, threads = sys.argv[1], int(sys.argv[2])
nb = json.load(open(f"{out}/notebook.json"))
cs = json.load(open(f"{out}/causalsweep_network.json"))
tp = json.load(open(f"{out}/throughput/manifest.json"))
df = json.load(open(f"{out}/default/manifest.json"))
nb_s = nb["seconds_per_network"]
one = cs["seconds_per_network_median"]
batch = tp["seconds"]["wall"] / tp["grid"]["networks"]
print(f"CPU: {tp['backend']['device']}")
print(f"{'contender':52} {'s/network':>10} {'vs notebook':>12}")
print(f"{'notebook Python (numpy+sklearn, n_jobs=-1, ' + str(threads) + ' cores)':52} {nb_s:10.3f} {1:11.0f}x")
print(f"{'causalsweep cpu, one network, 1 thread':52} {one:10.4f} {nb_s/one:11.0f}x")
print(f"{'causalsweep cpu, 16 networks on ' + str(threads) + ' threads (wall/16)':52} {batch:10.4f} {nb_s/batch:11.0f}x")
print(f"notebook phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in nb["phase_seconds"].items()))
print(f"causalsweep phases, one network (s): " + ", ".join(f"{k} {v:.4f}" for k, v in cs["phase_seconds_mean"].items()))
print(f"default sweep: {df['grid']['networks']} networks in {df['seconds']['wall']:.2f} s wall on {threads} threads")
print(f"raw results: {out}")
PY
