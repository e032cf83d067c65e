#!/usr/bin/env bash
# causalsweep on a real single-node SLURM cluster that this test starts and stops itself (munged on
# its own socket, slurmctld -D and slurmd -D on 127.0.0.1, no systemd). Checks that:
#  1. `submit --slurm` runs the array and the merge job to completion, equal to a local run;
#  2. a task that fails leaves the merge cancelled, `merge` names the shard and prints the sbatch line
#     that reruns it, and that line completes the sweep;
#  3. a task told that its time limit is near (USR1, as --signal=B:USR1@120 sends it) saves its state,
#     requeues itself and resumes where it stopped;
#  4. sbatch refusing the request is exit 2 with sbatch's reason.
# Usage: test_slurm.sh CAUSALSWEEP_BINARY. Exit 77 (ctest: skipped) with the reason when no cluster
# can be started here (not root, packages missing).
set -euo pipefail
BIN=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)

skip() {
  echo "SKIPPED: $*"
  exit 77
}
fail() {
  echo "FAILED: $*"
  exit 1
}
[ "$(id -u)" -eq 0 ] || skip "the daemons (munged, slurmctld, slurmd) need root here; run as root (CI does)"
for c in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo python3; do
  command -v "$c" > /dev/null || skip "'$c' is not installed (Debian: munge slurmctld slurmd slurm-client; scripts/install-deps.sh installs them)"
done
# Nothing from an enclosing SLURM job may leak into this cluster or into causalsweep's shard choice.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SLURM_' || true)

T=$(mktemp -d /tmp/causalsweep-slurm-XXXXXX)
chmod 755 "$T"  # munged refuses sockets in directories others cannot traverse
export SLURM_CONF=$T/cluster/slurm.conf
daemons=()

stop_cluster() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    echo "---- squeue / logs (test failed) ----"
    squeue 2> /dev/null || true
    tail -n 30 "$T"/cluster/*.log 2> /dev/null || true
    for f in "$T"/*/slurm/logs/*; do [ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }; done
  fi
  scancel --full --quiet --user root 2> /dev/null || true
  # Only the daemons this test started, by pid.
  for pid in "${daemons[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${daemons[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null || true
  done
  wait 2> /dev/null || true
  rm -rf "$T"
  exit "$rc"
}
trap stop_cluster EXIT

start_cluster() {
  "$HERE/cluster.sh" write-config "$T/cluster"
  munged -F -f --socket="$T/cluster/munge.sock" --key-file="$T/cluster/munge.key" --pid-file="$T/cluster/munged.pid" \
    --log-file="$T/cluster/munged.log" --seed-file="$T/cluster/munged.seed" > "$T/cluster/munged.out" 2>&1 &
  daemons+=($!)
  for _ in $(seq 100); do [ -S "$T/cluster/munge.sock" ] && break; sleep 0.05; done
  [ -S "$T/cluster/munge.sock" ] || fail "munged did not start: $(cat "$T/cluster/munged.log" 2> /dev/null)"
  slurmctld -D -f "$SLURM_CONF" > "$T/cluster/slurmctld.out" 2>&1 &
  daemons+=($!)
  slurmd -D -N cs-node -f "$SLURM_CONF" > "$T/cluster/slurmd.out" 2>&1 &
  daemons+=($!)
  for _ in $(seq 300); do sinfo -h -o %t 2> /dev/null | grep -q idle && return 0; sleep 0.1; done
  fail "the node never became idle: $(sinfo 2>&1; cat "$T"/cluster/*.out)"
}

json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
state() { scontrol show job "$1" 2> /dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
wait_until_gone() {  # job id, seconds
  local deadline=$(($(date +%s) + $2))
  while [ -n "$(squeue -h -j "$1" 2> /dev/null)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "job $1 still queued after $2 s"
    sleep 0.2
  done
}
same_results() {
  for f in runs.csv curves.csv; do cmp "$1/$f" "$2/$f" || fail "$2/$f differs from the local run's"; done
}

start_cluster
echo "cluster up after ${SECONDS} s"

cat > "$T/sweep.toml" << 'EOF'
name = "slurm-test"
[model]
n_neurons = [12, 20]
timesteps = [6000, 12000]
eta = [1.0, 2.0]
observed_ratio = [1.0, 0.5]
[seeds]
count = 6
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
EOF
"$BIN" run "$T/sweep.toml" -q -o "$T/local" > /dev/null

# 1. Array and merge to completion.
"$BIN" submit "$T/sweep.toml" --slurm --tasks 3 -o "$T/ok"
array=$(json "$T/ok/slurm/jobs.json" array_job)
merge=$(json "$T/ok/slurm/jobs.json" merge_job)
wait_until_gone "$merge" 180
[ "$(state "$merge")" = COMPLETED ] || fail "merge job $merge ended $(state "$merge")"
same_results "$T/local" "$T/ok"
echo "1. array $array (3 tasks) and merge $merge: merged output equals the local run"

# 2. Task 1 fails: a file stands where its shard directory must go.
mkdir -p "$T/fail"
touch "$T/fail/shard-1-of-3"
"$BIN" submit "$T/sweep.toml" --slurm --tasks 3 -o "$T/fail" > /dev/null
array=$(json "$T/fail/slurm/jobs.json" array_job)
merge=$(json "$T/fail/slurm/jobs.json" merge_job)
wait_until_gone "$array" 180
[ "$(state "${array}_1")" = FAILED ] || fail "task ${array}_1 ended $(state "${array}_1"), expected FAILED"
# The merge can never run: SLURM cancels it (--kill-on-invalid-dep) or keeps it pending forever.
for _ in $(seq 100); do
  merge_state=$(state "$merge")
  [ "$merge_state" = CANCELLED ] && break
  [ "$merge_state" = PENDING ] && scontrol show job "$merge" | grep -q DependencyNeverSatisfied && break
  sleep 0.1
done
case "$merge_state" in CANCELLED | PENDING) ;; *) fail "merge job $merge is $merge_state after a failed task" ;; esac
[ ! -e "$T/fail/runs.csv" ] || fail "a merge ran despite the failed task"
set +e
report=$("$BIN" merge "$T/fail" 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "merge of an incomplete sweep exited $rc: $report"
grep -q "shard 1: never started" <<< "$report" || fail "merge did not name shard 1: $report"
rerun=$(grep -E '^ +sbatch --array=1 ' <<< "$report" | sed 's/^ *//') || fail "no sbatch line in: $report"
rm "$T/fail/shard-1-of-3"
rerun_job=$(eval "${rerun/sbatch/sbatch --parsable}")
wait_until_gone "$rerun_job" 180
"$BIN" merge "$T/fail"
same_results "$T/local" "$T/fail"
echo "2. failed task: merge job $merge_state, merge named shard 1; '$rerun' completed the sweep"

# 3. Time limit near: USR1 to the batch shell of task 0 once it has saved a batch; it requeues itself.
# Task 0's process runs only in 50 ms slices the test grants it (SIGCONT, then SIGSTOP) until it has
# saved a batch, read from the journal itself (past its 32-byte head and the header whose size the
# head records at byte 16), and stays stopped until its shell has forwarded the USR1 as TERM: so
# neither a loaded machine nor SLURM's signalling latency lets it finish first. Should it finish
# before the test first catches it, there was nothing to interrupt, and the attempt is repeated in a
# fresh directory (3 at most).
journal_records_start() { echo $((32 + $(od -An -tu4 -j16 -N4 "$1" | tr -d ' '))); }
term_pending() {  # pid: SIGTERM pending (bit 14 of the thread's or the process's pending set)
  local mask
  for mask in $(awk '/^(SigPnd|ShdPnd):/ {print $2}' "/proc/$1/status" 2> /dev/null); do
    (((0x$mask >> 14) & 1)) && return 0
  done
  return 1
}
requeue_attempt() {  # output directory; 0: interrupted, requeued and resumed; 1: finished too early
  local out=$1
  "$BIN" submit "$T/long.toml" --slurm --tasks 2 -o "$out" > /dev/null
  local array merge journal log deadline
  array=$(json "$out/slurm/jobs.json" array_job)
  merge=$(json "$out/slurm/jobs.json" merge_job)
  journal="$out/shard-0-of-2/journal"
  log="$out/slurm/logs/shard-0.log"
  deadline=$(($(date +%s) + 120))
  local child=""
  until [ -n "$child" ]; do
    grep -q "complete:" "$log" 2> /dev/null && { wait_until_gone "$merge" 180; return 1; }
    [ "$(date +%s)" -lt "$deadline" ] || fail "task 0 never started"
    child=$(pgrep -f -- "--shard 0/2 -o $out" | head -n 1)
  done
  kill -STOP "$child" 2> /dev/null || { wait_until_gone "$merge" 180; return 1; }
  until [ -f "$journal" ] && [ "$(stat -c %s "$journal")" -ge 32 ] &&
    [ "$(stat -c %s "$journal")" -gt "$(journal_records_start "$journal")" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { kill -CONT "$child"; fail "no batch saved"; }
    kill -CONT "$child"
    sleep 0.05
    kill -STOP "$child" 2> /dev/null || { wait_until_gone "$merge" 180; return 1; }
  done
  scancel --signal=USR1 --batch "${array}_0"
  until term_pending "$child"; do
    [ "$(date +%s)" -lt "$deadline" ] || { kill -CONT "$child"; fail "the batch shell never forwarded TERM"; }
    sleep 0.05
  done
  kill -CONT "$child"
  until scontrol show job "${array}_0" | grep -q 'Restarts=1'; do
    if grep -q "complete:" "$log" 2> /dev/null && ! grep -q "interrupted by a signal" "$log"; then
      wait_until_gone "$merge" 180  # it finished before the signal: let the sweep end, try again
      return 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "task 0 was not requeued: $(scontrol show job "${array}_0")"
    sleep 0.1
  done
  # SLURM restarts it by itself once the killed run's credential expires (cluster.sh: cred_expire).
  wait_until_gone "$merge" 180
  [ "$(state "$merge")" = COMPLETED ] || fail "merge job $merge ended $(state "$merge")"
  grep -q "interrupted by a signal" "$log" || fail "task 0 was not interrupted: $(cat "$log")"
  grep -q "resuming: " "$log" || fail "task 0 did not resume: $(cat "$log")"
  same_results "$T/long-local" "$out"
  echo "3. task 0 stopped on USR1, requeued itself and $(grep -o 'resuming: [0-9]* of [0-9]*' "$log"); merged output equals the local run"
}
# Longer networks than sweep.toml's (about 0.7 s each on one core), so that task 0 is still running
# when the test catches it.
sed 's/^timesteps = .*/timesteps = 200000/; s/^n_neurons = .*/n_neurons = 40/; s/^count = .*/count = 6/' \
  "$T/sweep.toml" > "$T/long.toml"
"$BIN" run "$T/long.toml" -q -o "$T/long-local" > /dev/null
for attempt in 1 2 3; do
  requeue_attempt "$T/requeue-$attempt" && break
  [ "$attempt" -lt 3 ] || fail "task 0 finished before USR1 reached it in 3 attempts"
  echo "3. attempt $attempt: task 0 finished before USR1 reached it; again"
done

# 4. sbatch refuses: exit 2 with its reason.
set +e
refused=$("$BIN" submit "$T/sweep.toml" --slurm --tasks 2 --partition nosuch -o "$T/refused" 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "submit to a missing partition exited $rc: $refused"
grep -qi "partition" <<< "$refused" || fail "sbatch's reason is not shown: $refused"
echo "4. sbatch refused a missing partition: exit 2 with its reason"
echo "PASSED in ${SECONDS} s"
