#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in stages that each fit in a few minutes:
#   bench/run_gpu.sh build      configure and build in $BUILD (default build-cuda)
#   bench/run_gpu.sh test       the CUDA tests (kernels vs CPU, sweeps vs the CPU backend), then the whole suite
#   bench/run_gpu.sh sanitize   compute-sanitizer memcheck and racecheck on the kernels' tests
#   bench/run_gpu.sh bench      kernel table (n x T), kernel on workload W, W end to end, CPU on a slice of W
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
      "$build/tests/causalsweep_tests" --gtest_filter='CudaDevice.RawStream*:CudaDevice.KernelMatchesCpuGrams' \
      > "$out/sanitize_$tool.log" 2>&1 && echo "$tool: clean" || { echo "$tool: FAILED"; tail -40 "$out/sanitize_$tool.log"; }
  done
}

run_bench() {
  "$build/bench/bench_cuda" kernel 10000 100 5000 | tee "$out/kernel_W.json"
  "$build/bench/bench_cuda" table | tee "$out/kernel_table.jsonl"
  # Workload W end to end through the backend: 10,000 networks, n = 100, T = 5000, eta = 2.
  "$build/bench/bench_cuda" backend 10000 100 5000 "$threads" | tee "$out/backend_W.json"
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
}

case "$stage" in
  build) run_build ;;
  test) run_test ;;
  sanitize) run_sanitize ;;
  bench) run_bench ;;
  all) run_build; run_test; run_sanitize; run_bench ;;
  *) echo "usage: $0 build|test|sanitize|bench|all" >&2; exit 2 ;;
esac
