#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in stages that each fit in a few minutes; several in one call run
# in order (bench/run_gpu.sh build test):
#   bench/run_gpu.sh build      configure and build in $BUILD (default build-cuda)
#   bench/run_gpu.sh test       the tests that need a device (kernels vs CPU, sweeps vs the CPU backend)
#   bench/run_gpu.sh suite      the rest of the test suite, on the device machine's compiler and CPU
#   bench/run_gpu.sh sanitize   compute-sanitizer memcheck, racecheck, initcheck, synccheck on every kernel's device test
#   bench/run_gpu.sh bench      the device's ceilings (copy, FP64, FP32), kernel table (n x T), kernel on
#                               workload W, W end to end (backend, and CLI with self-check and
#                               outputs), CPU on a slice of W
#   bench/run_gpu.sh profile    Nsight Compute on every kernel of W's pipeline (2,000 networks): time,
#                               FLOP/s and DRAM bytes/s per kernel against the measured ceilings
#                               (bench/ncu_summary.py)
#   bench/run_gpu.sh n_to_1     the N-to-1 family: its CUDA tests, the 140-run notebook sweep on the GPU
#                               (bench_cuda_n_to_1) and on the CPU backend on all cores, same call
#   bench/run_gpu.sh harness    issue 5's side-by-side table: the JAX and PyTorch peers, causalsweep cuda
#                               and causalsweep cpu on all cores, on workloads $WORKLOADS (default
#                               single,tutorial4,W) through bench/harness.py --gpu; $PYTHON (default
#                               python3) must import jax and torch; $HARNESS_ARGS adds harness options;
#                               table and JSON in $OUT (runs in $SCRATCH/harness; bench/peers/README.md)
# Results (JSON lines, logs) go to $OUT (default /tmp/causalsweep-gpu); nothing else is written there.
# The GPU machine has no Debian -dev packages and no network: when .device-kit/debs exists (made here
# by `scripts/device-kit.sh fetch`, carried with the call), the build unpacks it under $DEPS (default
# /tmp/causalsweep-deps) and finds the libraries there; SYSTEM_DEPS=1 ignores the kit.
#
# A session with a lent device (the `run` tool; 10 minutes a call, 30 of device time in all):
#   here, once:  scripts/device-kit.sh fetch            # 12 MB of .debs into .device-kit (git-ignored)
#   each call:   DEADLINE=570 CAUSALSWEEP_COMMIT=<git rev-parse --short=12 HEAD, here> PACK=1 \
#                  bench/run_gpu.sh build test       (timeout_s 600, carry [".device-kit"]); then
#                `build sanitize`, `build bench`, `build profile`, `build n_to_1 harness`, `build suite`
#                (the copied tree has no .git: the commit goes into manifests from there)
# Every call starts with `build`: the machine goes back 30 s after a call, and a fresh one is bare
# (a full build: about 6.5 CPU-minutes, its longest file 22 s, so about a minute on 16 cores).
# PACK=1 puts each stage's files into one $OUT/<stage>.tar.gz (the tool brings back 8 files at most);
# DEADLINE=570 stops a stage in time for that (below).
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
build=${BUILD:-build-cuda}
out=${OUT:-/tmp/causalsweep-gpu}
deps=${DEPS:-/tmp/causalsweep-deps}
scratch=${SCRATCH:-/tmp/causalsweep-gpu-scratch}   # sweep outputs (W's runs.csv is ~100 MB); manifests copied to $out
threads=$(nproc)
mkdir -p "$out" "$scratch"

# Configures $build once: the kit's libraries where it was carried, nvcc from /usr/local/cuda when it
# is not on PATH; stops unless CUDA was enabled (a CPU-only build would skip every GPU test).
configure() {
  local args=()
  if [ -d .device-kit/debs ] && [ -z "${SYSTEM_DEPS:-}" ]; then
    # Unpacked once per machine; the kit's script says where CMake finds it.
    if [ ! -s "$deps/cmake_prefix_path" ]; then
      mkdir -p "$deps"
      scripts/device-kit.sh unpack .device-kit/debs "$deps" > "$deps/cmake_prefix_path.part" || exit 1
      mv "$deps/cmake_prefix_path.part" "$deps/cmake_prefix_path"
    fi
    args+=("-DCMAKE_PREFIX_PATH=$(cat "$deps/cmake_prefix_path")")
  fi
  command -v nvcc > /dev/null || [ ! -x /usr/local/cuda/bin/nvcc ] || export PATH="/usr/local/cuda/bin:$PATH"
  # Ninja where there is one (the GPU machine's image ships it; it may lack make), for a new build only.
  [ -f "$build/CMakeCache.txt" ] || ! command -v ninja > /dev/null || args+=(-G Ninja)
  cmake -S . -B "$build" "${args[@]}" > "$out/cmake.log" 2>&1 || { tail -40 "$out/cmake.log"; exit 1; }
  grep -q "causalsweep: CUDA enabled" "$out/cmake.log" \
    || { grep "causalsweep:" "$out/cmake.log"; echo "CUDA not enabled in $build: is nvcc installed?" >&2; exit 1; }
}

run_build() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.csv" \
    || echo "nvidia-smi failed (building anyway)"
  configure
  cmake --build "$build" -j "$threads" > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
}

# The tests that need a device (suites named *Device*, and the backend's selection), then the rest of
# the suite (CI runs it too, without a GPU; ctest's emulation on fibers is left to CI).
device_tests='*Device*:CudaSelection.*'
run_test() {
  "$build/tests/causalsweep_tests" --gtest_filter="$device_tests" 2>&1 | tee "$out/test_device.log"
}

run_suite() {
  local rc=0
  "$build/tests/causalsweep_tests" --gtest_brief=1 --gtest_filter="-$device_tests" > "$out/test_suite.log" 2>&1 || rc=$?
  tail -30 "$out/test_suite.log"
  return "$rc"
}

run_sanitize() {
  local sanitizer failed=0
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  [ -x "$sanitizer" ] || { echo "compute-sanitizer not found" >&2; exit 1; }
  for tool in memcheck racecheck initcheck synccheck; do
    "$sanitizer" --tool "$tool" --error-exitcode 3 \
      "$build/tests/causalsweep_tests" --gtest_filter='CudaDevice.RawStream*:CudaDevice.KernelMatchesCpuGrams:CudaDevice.LassoMatchesCpu:CudaDevice.LassoActiveSetMatchesCpu:CudaConnectivityDevice.*:CudaDeviceLeastSquares.*:CudaScoresDevice.*' \
      > "$out/sanitize_$tool.log" 2>&1 && echo "$tool: clean" || { echo "$tool: FAILED"; tail -40 "$out/sanitize_$tool.log"; failed=1; }
  done
  return "$failed"
}

# The device's ceilings (copy bandwidth, FP64 and FP32 FMA rates), measured; exported as the
# denominators of bench_cuda's roofline fractions.
measure_ceilings() {
  "$build/bench/bench_cuda" ceilings | tee "$out/ceilings.json"
  local peaks
  peaks=$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); print(c["fp64_fma_per_s"], c["copy_bytes_per_s"])' \
    "$out/ceilings.json")
  export CS_PEAK_FMA_PER_S=${peaks% *} CS_PEAK_BYTES_PER_S=${peaks#* }
}

run_bench() {
  measure_ceilings
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
  rm -rf "$scratch/w_cpu" "$scratch/w_cuda"
  local start end
  start=$(date +%s.%N)
  "$build/causalsweep" run "$out/w_slice.toml" -q --no-report --backend cpu --threads "$threads" -o "$scratch/w_cpu" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"cpu_cli_w_slice\", \"networks\": 1600, \"threads\": $threads, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/cpu_slice.json"
  start=$(date +%s.%N)
  "$build/causalsweep" run "$out/w_slice.toml" -q --no-report --backend cuda --threads "$threads" --batch-size 1600 -o "$scratch/w_cuda" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"cuda_cli_w_slice\", \"networks\": 1600, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/cuda_slice.json"
  # Same sweep, both backends: the curves should agree to ~1e-10 (runs.csv differs only in the last digits).
  diff <(cut -d, -f1-12 "$scratch/w_cpu/runs.csv") <(cut -d, -f1-12 "$scratch/w_cuda/runs.csv") > /dev/null \
    && echo "runs.csv keys identical" || echo "runs.csv keys DIFFER between cpu and cuda (see $scratch)"
  # All of W through the CLI: process start, the device's self-check, 750,000 rows of runs.csv written.
  sed 's/^count = 1600$/count = 10000/; s/^name = "w_slice"$/name = "w_full"/' "$out/w_slice.toml" > "$out/w_full.toml"
  rm -rf "$scratch/w_full_cuda"
  start=$(date +%s.%N)
  "$build/causalsweep" run "$out/w_full.toml" -q --no-report --backend cuda --threads "$threads" -o "$scratch/w_full_cuda" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"cuda_cli_w\", \"networks\": 10000, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/cuda_cli_w.json"
  cp "$scratch/w_full_cuda/manifest.json" "$out/cuda_cli_w_manifest.json"
  python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["seconds"]))' "$out/cuda_cli_w_manifest.json" \
    | tee "$out/cuda_cli_w_phases.json"
}

# Nsight Compute on every kernel of W's pipeline for 2,000 networks (the backend's self-check
# launches included; they are small), summarised per kernel against the measured ceilings.
ncu_metrics="gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum"
ncu_metrics+=",smsp__sass_thread_inst_executed_op_dadd_pred_on.sum,smsp__sass_thread_inst_executed_op_dmul_pred_on.sum"
ncu_metrics+=",smsp__sass_thread_inst_executed_op_dfma_pred_on.sum,smsp__sass_thread_inst_executed_op_fadd_pred_on.sum"
ncu_metrics+=",smsp__sass_thread_inst_executed_op_fmul_pred_on.sum,smsp__sass_thread_inst_executed_op_ffma_pred_on.sum"
ncu_metrics+=",sm__throughput.avg.pct_of_peak_sustained_elapsed,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
ncu_metrics+=",launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active"
run_profile() {
  local ncu
  ncu=$(command -v ncu || true)
  [ -n "$ncu" ] || [ ! -x /usr/local/cuda/bin/ncu ] || ncu=/usr/local/cuda/bin/ncu
  [ -n "$ncu" ] || ncu=$(ls -d /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | sort -V | tail -1 || true)
  [ -n "$ncu" ] && [ -x "$ncu" ] || { echo "ncu (Nsight Compute) not found" >&2; exit 1; }
  "$ncu" --version | tail -1
  measure_ceilings
  # --clock-control none: the clocks stay as the device runs them (the device tool's advice).
  "$ncu" --target-processes all --clock-control none --metrics "$ncu_metrics" --export "$out/profile" --force-overwrite \
    "$build/bench/bench_cuda" backend 2000 100 5000 "$threads" > "$out/profile_run.log" 2>&1 \
    || { tail -30 "$out/profile_run.log"; exit 1; }
  # ncu can exit 0 with no report (no access to the counters: ERR_NVGPUCTRPERM in the log).
  [ -s "$out/profile.ncu-rep" ] || { grep "==ERROR==\|==WARNING==" "$out/profile_run.log"; tail -10 "$out/profile_run.log"; exit 1; }
  # Demangled names keep the template arguments (least_squares.cu's block programs are one
  # function); ncu_summary.py drops the return type, namespaces and parameter list.
  "$ncu" --import "$out/profile.ncu-rep" --csv --page raw --print-units base --print-kernel-base demangled \
    > "$out/profile_raw.csv"
  python3 bench/ncu_summary.py "$out/profile_raw.csv" "$out/ceilings.json" --json "$out/profile_summary.json" \
    | tee "$out/profile_summary.md"
}

run_n_to_1() {
  "$build/tests/causalsweep_tests" --gtest_filter='CudaNTo1*:FamilyDevice*' 2>&1 | tee "$out/test_n_to_1.log"
  "$build/bench/bench_cuda_n_to_1" --repeat 3 | tee "$out/n_to_1_gpu.json"
  rm -rf "$scratch/n1_cpu" "$scratch/n1_cuda"
  local start end
  start=$(date +%s.%N)
  "$build/causalsweep" run configs/n_to_1_vary_syncond_ratio.toml -q --no-report --backend cuda -o "$scratch/n1_cuda" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"n_to_1_sweep_cuda_cli\", \"runs\": 140, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/n1_cuda.json"
  start=$(date +%s.%N)
  "$build/causalsweep" run configs/n_to_1_vary_syncond_ratio.toml -q --no-report --backend cpu --threads "$threads" -o "$scratch/n1_cpu" > /dev/null
  end=$(date +%s.%N)
  echo "{\"measure\": \"n_to_1_sweep_cpu_cli\", \"runs\": 140, \"threads\": $threads, \"wall_seconds\": $(awk "BEGIN { print $end - $start }")}" | tee "$out/n1_cpu.json"
  cp "$scratch/n1_cuda/runs.csv" "$out/n1_cuda_runs.csv"
  cp "$scratch/n1_cpu/runs.csv" "$out/n1_cpu_runs.csv"
  cmp -s "$scratch/n1_cpu/runs.csv" "$scratch/n1_cuda/runs.csv" && echo "n_to_1 runs.csv: cuda == cpu" || echo "n_to_1 runs.csv: cuda differs from cpu"
}

run_harness() {
  if [ -z "${NO_BUILD:-}" ]; then   # incremental build of the CLI alone (NO_BUILD=1: use $build/causalsweep as it is)
    [ -f "$build/CMakeCache.txt" ] || configure
    cmake --build "$build" -j "$threads" --target causalsweep > "$out/build_causalsweep.log" 2>&1 \
      || { tail -50 "$out/build_causalsweep.log"; exit 1; }
  fi
  local py=${PYTHON:-python3}
  "$py" -c 'import jax; print("jax", jax.__version__, jax.devices())' 2>&1 | tail -1 || true
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1 || true
  eval "\"\$py\" bench/harness.py --gpu --build \"\$build\" --out \"\$scratch/harness\" --workloads \"${WORKLOADS:-single,tutorial4,W}\" --peer-python \"\$py\" ${HARNESS_ARGS:-}" \
    | tee "$out/harness_table.txt"
  cp "$scratch/harness/harness.json" "$out/harness.json"
}

# PACK=1 (for the device tool, which brings back at most 8 files from $OUT): the files in $OUT go into
# one $OUT/<stage>.tar.gz after each stage, also when it fails or hits $DEADLINE.
pack() {
  local stage=$1 files
  [ -n "${PACK:-}" ] || return 0
  files=$(cd "$out" && find . -maxdepth 3 -type f ! -name '*.tar.gz' | sort)
  [ -n "$files" ] || return 0
  (cd "$out" && echo "$files" | tar -czf "$stage.tar.gz" -T - && echo "$files" | xargs rm -f)
  find "$out" -mindepth 1 -type d -empty -delete
}

run_stage() {
  case "$1" in
    build) run_build ;;
    test) run_test ;;
    suite) run_suite ;;
    sanitize) run_sanitize ;;
    bench) run_bench ;;
    profile) run_profile ;;
    n_to_1) run_n_to_1 ;;
    harness) run_harness ;;
    all) run_build; run_test; run_sanitize; run_bench ;;
  esac
}

# Internal: one stage in its own process (its own `set -e`), which the loop below can stop at
# $DEADLINE and still pack what it wrote.
if [ "${1:-}" = "__stage" ]; then
  run_stage "$2"
  exit 0
fi

[ $# -gt 0 ] || set -- all
for stage in "$@"; do
  case "$stage" in
    build|test|suite|sanitize|bench|profile|n_to_1|harness|all) ;;
    *) echo "usage: $0 STAGE... (build test suite sanitize bench profile n_to_1 harness all)" >&2; exit 2 ;;
  esac
done
# DEADLINE=S: every stage ends by S seconds after the start (SIGTERM, then SIGKILL 10 s later), so a
# call under the device tool's 600 s limit still packs and returns what it measured.
for stage in "$@"; do
  echo "== bench/run_gpu.sh $stage ($(date -u +%FT%TZ))"
  rc=0
  if [ -n "${DEADLINE:-}" ]; then
    left=$((DEADLINE - SECONDS))
    if [ "$left" -gt 15 ]; then
      timeout -k 10 "$left" "$self" __stage "$stage" || rc=$?
    else
      rc=124
    fi
  else
    "$self" __stage "$stage" || rc=$?
  fi
  pack "$stage"
  if [ "$rc" -ne 0 ]; then
    if [ -n "${DEADLINE:-}" ] && { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; }; then
      echo "stage $stage stopped at DEADLINE=$DEADLINE s"
    fi
    exit "$rc"
  fi
done
