#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in stages that each fit in a few minutes:
#   bench/run_gpu.sh build      configure and build in $BUILD (default build-cuda)
#   bench/run_gpu.sh test       the CUDA tests (kernels vs CPU, sweeps vs the CPU backend), then the whole suite
#   bench/run_gpu.sh sanitize   compute-sanitizer memcheck, racecheck, initcheck, synccheck on every kernel's device test
#   bench/run_gpu.sh bench      kernel table (n x T), kernel on workload W, W end to end (backend, and CLI
#                               with self-check and outputs), CPU on a slice of W
#   bench/run_gpu.sh n_to_1     the N-to-1 family: its CUDA tests, the 140-run notebook sweep on the GPU
#                               (bench_cuda_n_to_1) and on the CPU backend on all cores, same call
#   bench/run_gpu.sh harness    issue 5's side-by-side table: the JAX and PyTorch peers, causalsweep cuda
#                               and causalsweep cpu on all cores, on workloads $WORKLOADS (default
#                               single,tutorial4,W) through bench/harness.py --gpu; $PYTHON (default
#                               python3) must import jax and torch; $HARNESS_ARGS adds harness options;
#                               table and JSON in $OUT/harness (bench/peers/README.md)
# Results (JSON lines, logs) go to $OUT (default /tmp/causalsweep-gpu); nothing else is written.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-cuda}
out=${OUT:-/tmp/causalsweep-gpu}
threads=$(nproc)
mkdir -p "$out"
stage=${1:-all}

run_build() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.csv"
  cmake -S . -B "$build" > "$out/cmake.log"
  cmake --build "$build" -j "$threads" > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
}

run_test() {
  "$build/tests/causalsweep_tests" --gtest_filter='Cuda*' 2>&1 | tee "$out/test_cuda.log"
  "$build/tests/causalsweep_tests" --gtest_brief=1 > "$out/test_all.log" 2>&1 || true
  tail -30 "$out/test_all.log"
}

run_sanitize() {
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  [ -x "$sanitizer" ] || { echo "compute-sanitizer not found" >&2; exit 1; }
  for tool in memcheck racecheck initcheck synccheck; do
    "$sanitizer" --tool "$tool" --error-exitcode 3 \
      "$build/tests/causalsweep_tests" --gtest_filter='CudaDevice.RawStream*:CudaDevice.KernelMatchesCpuGrams:CudaDevice.LassoMatchesCpu:CudaDevice.LassoActiveSetMatchesCpu:CudaConnectivityDevice.*:CudaDeviceLeastSquares.*:CudaScoresDevice.*' \
      > "$out/sanitize_$tool.log" 2>&1 && echo "$tool: clean" || { echo "$tool: FAILED"; tail -40 "$out/sanitize_$tool.log"; }
  done
}

run_bench() {
  "$build/bench/bench_cuda" kernel 10000 100 5000 | tee "$out/kernel_W.json"
  "$build/bench/bench_cuda" table | tee "$out/kernel_table.jsonl"
  # The mapping by size, measured: n = 20 and 32 (backend: 64 threads, 4 blocks per SM) against a
  # block of 256 threads with all the shared memory, and n = 50, 100 the other way round.
  for n in 20 32 50 100; do
    "$build/bench/bench_cuda" kernel 10000 "$n" 5000 256 1
    "$build/bench/bench_cuda" kernel 10000 "$n" 5000 64 4
  done | tee "$out/kernel_mapping.jsonl"
  # Workload W end to end through the backend: 10,000 networks, n = 100, T = 5000, eta = 2.
  "$build/bench/bench_cuda" backend 10000 100 5000 "$threads" | tee "$out/backend_W.json"
  # The same with the cyclic lasso (scikit-learn's iterates: up to 1000 sweeps per target here).
  "$build/bench/bench_cuda" backend 10000 100 5000 "$threads" cyclic | tee "$out/backend_W_cyclic.json"
  # The CPU backend on a slice of W (1,600 networks) on all cores, in the same call, through the CLI.
  cat > "$out/w_slice.toml" <<TOML
name = "w_slice"
[model]
n_neurons = 100
timesteps = 5000
eta = 2.0
observed_ratio = [1.0, 0.8, 0.6, 0.4, 0.2]
[seeds]
count = 1600
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
TOML
  rm -rf "$out/w_cpu" "$out/w_cuda"
  local start end
  start=$(date +%s.%N)
  "$build/causalsweep" run "$out/w_slice.toml" -q --no-report --backend cpu --threads "$threads" -o "$out/w_cpu" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"cpu_cli_w_slice\", \"networks\": 1600, \"threads\": $threads, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/cpu_slice.json"
  start=$(date +%s.%N)
  "$build/causalsweep" run "$out/w_slice.toml" -q --no-report --backend cuda --threads "$threads" --batch-size 1600 -o "$out/w_cuda" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"cuda_cli_w_slice\", \"networks\": 1600, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/cuda_slice.json"
  # Same sweep, both backends: the curves should agree to ~1e-10 (runs.csv differs only in the last digits).
  diff <(cut -d, -f1-12 "$out/w_cpu/runs.csv") <(cut -d, -f1-12 "$out/w_cuda/runs.csv") > /dev/null && echo "runs.csv keys identical"
  # All of W through the CLI: process start, the device's self-check, 750,000 rows of runs.csv written.
  sed 's/^count = 1600$/count = 10000/; s/^name = "w_slice"$/name = "w_full"/' "$out/w_slice.toml" > "$out/w_full.toml"
  rm -rf "$out/w_full_cuda"
  start=$(date +%s.%N)
  "$build/causalsweep" run "$out/w_full.toml" -q --no-report --backend cuda --threads "$threads" -o "$out/w_full_cuda" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"cuda_cli_w\", \"networks\": 10000, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/cuda_cli_w.json"
  python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["seconds"]))' "$out/w_full_cuda/manifest.json" \
    | tee "$out/cuda_cli_w_phases.json"
}

run_n_to_1() {
  "$build/tests/causalsweep_tests" --gtest_filter='CudaNTo1*:FamilyDevice*' 2>&1 | tee "$out/test_n_to_1.log"
  "$build/bench/bench_cuda_n_to_1" --repeat 3 | tee "$out/n_to_1_gpu.json"
  rm -rf "$out/n1_cpu" "$out/n1_cuda"
  local start end
  start=$(date +%s.%N)
  "$build/causalsweep" run configs/n_to_1_vary_syncond_ratio.toml -q --no-report --backend cuda -o "$out/n1_cuda" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"n_to_1_sweep_cuda_cli\", \"runs\": 140, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/n1_cuda.json"
  start=$(date +%s.%N)
  "$build/causalsweep" run configs/n_to_1_vary_syncond_ratio.toml -q --no-report --backend cpu --threads "$threads" -o "$out/n1_cpu" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"n_to_1_sweep_cpu_cli\", \"runs\": 140, \"threads\": $threads, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/n1_cpu.json"
  cmp -s "$out/n1_cpu/runs.csv" "$out/n1_cuda/runs.csv" && echo "n_to_1 runs.csv: cuda == cpu" || echo "n_to_1 runs.csv: cuda differs from cpu"
}

run_harness() {
  if [ -z "${NO_BUILD:-}" ]; then   # incremental build of the CLI alone (NO_BUILD=1: use $build/causalsweep as it is)
    { [ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" > "$out/cmake.log"; } \
      && cmake --build "$build" -j "$threads" --target causalsweep > "$out/build_causalsweep.log" 2>&1 \
      || { tail -50 "$out/build_causalsweep.log"; exit 1; }
  fi
  local py=${PYTHON:-python3}
  "$py" -c 'import jax; print("jax", jax.__version__, jax.devices())' 2>&1 | tail -1 || true
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1 || true
  eval "\"\$py\" bench/harness.py --gpu --build \"\$build\" --out \"\$out/harness\" --workloads \"${WORKLOADS:-single,tutorial4,W}\" --peer-python \"\$py\" ${HARNESS_ARGS:-}" \
    | tee "$out/harness_table.txt"
}

case "$stage" in
  build) run_build ;;
  test) run_test ;;
  sanitize) run_sanitize ;;
  bench) run_bench ;;
  n_to_1) run_n_to_1 ;;
  harness) run_harness ;;
  all) run_build; run_test; run_sanitize; run_bench ;;
  *) echo "usage: $0 build|test|sanitize|bench|n_to_1|harness|all" >&2; exit 2 ;;
esac
