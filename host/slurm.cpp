#include "slurm.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "orchestrator.hpp"
#include "shard.hpp"

namespace causalsweep {

int default_task_count(double cost, uint64_t networks, int cpus) {
  constexpr double seconds_per_task = 1800;
  const double seconds = cost / (nominal_rate_per_thread * std::max(1, cpus));
  const double tasks = std::ceil(seconds / seconds_per_task);
  return static_cast<int>(std::clamp<double>(tasks, 1, static_cast<double>(std::min<uint64_t>(networks, 1000))));
}

namespace {

std::string resource_lines(const SlurmJob& job, bool with_gpus) {
  const SlurmOptions& o = job.options;
  std::string s;
  if (!o.partition.empty()) s += fmt::format("#SBATCH --partition={}\n", o.partition);
  if (!o.account.empty()) s += fmt::format("#SBATCH --account={}\n", o.account);
  if (!o.time.empty()) s += fmt::format("#SBATCH --time={}\n", o.time);
  if (!o.mem.empty()) s += fmt::format("#SBATCH --mem={}\n", o.mem);
  if (o.cpus_per_task > 0 && with_gpus) s += fmt::format("#SBATCH --cpus-per-task={}\n", o.cpus_per_task);
  if (o.gpus_per_task > 0 && with_gpus) s += fmt::format("#SBATCH --gpus-per-task={}\n", o.gpus_per_task);
  return s;
}

// Minutes of a SLURM time limit (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); -1 when it does not parse.
double time_limit_minutes(const std::string& t) {
  int days = 0;
  std::string rest = t;
  if (const size_t dash = t.find('-'); dash != std::string::npos) {
    if (dash == 0 || t.find_first_not_of("0123456789") != dash) return -1;
    days = std::stoi(t.substr(0, dash));
    rest = t.substr(dash + 1);
  }
  std::vector<double> parts;
  size_t at = 0;
  while (at <= rest.size()) {
    const size_t colon = std::min(rest.find(':', at), rest.size());
    const std::string part = rest.substr(at, colon - at);
    if (part.empty() || part.size() > 9 || part.find_first_not_of("0123456789") != std::string::npos) return -1;
    parts.push_back(std::stod(part));
    at = colon + 1;
  }
  if (parts.size() > 3) return -1;
  double minutes = days * 1440.0;
  if (days > 0) {  // D-H, D-H:M, D-H:M:S
    const double weights[] = {60, 1, 1.0 / 60};
    for (size_t i = 0; i < parts.size(); ++i) minutes += parts[i] * weights[i];
  } else if (parts.size() == 3) {  // H:M:S
    minutes += parts[0] * 60 + parts[1] + parts[2] / 60;
  } else {  // M or M:S
    minutes += parts[0] + (parts.size() == 2 ? parts[1] / 60 : 0);
  }
  return minutes;
}

// Job names go into #SBATCH lines: keep a plain token.
std::string job_name(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  return "cs-" + out;
}

}  // namespace

std::string array_script(const SlurmJob& job) {
  const std::string dir = job.output_dir.string();
  const std::string throttle = job.options.throttle > 0 ? fmt::format("%{}", job.options.throttle) : "";
  const std::string config = job.config_path.empty() ? "" : shell_quote(job.config_path) + " ";
  return fmt::format(
      R"(#!/bin/bash
# causalsweep sweep '{name}' (config hash {hash}): {networks} networks in {tasks} shard(s), written by
# `causalsweep submit --slurm`. Task i runs shard i; running a task again resumes it, so rerunning
# some is safe: sbatch --array=3,5 {self}
#SBATCH --job-name={job}
#SBATCH --array=0-{last}{throttle}
#SBATCH --ntasks=1
{resources}#SBATCH --output={logs}/shard-%a.log
#SBATCH --open-mode=append
#SBATCH --requeue
{signal}set -u
# SLURM signals this shell (USR1 shortly before the time limit; TERM on preemption or scancel).
# causalsweep then saves its state and exits 75 (interrupted, resumable).
warned=0
trap 'warned=1; kill -TERM "$pid" 2>/dev/null' USR1
trap 'kill -TERM "$pid" 2>/dev/null' TERM
{binary} run {config}--shard "$SLURM_ARRAY_TASK_ID/{tasks}" -o {dir} --threads "${{SLURM_CPUS_PER_TASK:-1}}" &
pid=$!
wait "$pid"
rc=$?
while kill -0 "$pid" 2>/dev/null; do  # a trap interrupted wait: wait for the real exit status
  wait "$pid"
  rc=$?
done
# Stopped for the time limit with its state saved: requeue, so that the task resumes where it stopped.
# (At most 100 times: a limit too short for even one batch must not loop forever.)
if [ "$rc" -eq 75 ] && [ "$warned" -eq 1 ] && [ "${{SLURM_RESTART_COUNT:-0}}" -lt 100 ]; then
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$rc"
)",
      fmt::arg("name", job.name), fmt::arg("job", job_name(job.name)), fmt::arg("hash", job.config_hash),
      fmt::arg("networks", job.networks),
      fmt::arg("tasks", job.tasks), fmt::arg("self", shell_quote(dir + "/slurm/array.sbatch")),
      fmt::arg("last", job.tasks - 1), fmt::arg("throttle", throttle), fmt::arg("resources", resource_lines(job, true)),
      fmt::arg("logs", shell_quote(dir + "/slurm/logs")),
      // The warning needs a limit well beyond its 120 s lead (SLURM may send it up to 60 s early).
      fmt::arg("signal", time_limit_minutes(job.options.time) >= 10 ? "#SBATCH --signal=B:USR1@120\n" : ""),
      fmt::arg("binary", shell_quote(job.binary)), fmt::arg("config", config), fmt::arg("dir", shell_quote(dir)));
}

std::string merge_script(const SlurmJob& job) {
  const std::string dir = job.output_dir.string();
  return fmt::format(
      R"(#!/bin/bash
# Merges the {tasks} shard(s) of causalsweep sweep '{name}' (config hash {hash}) into {dir}/
# (runs.csv, curves.csv, manifest.json); submitted with --dependency=afterok on the array job.
#SBATCH --job-name={job}-merge
#SBATCH --ntasks=1
{resources}#SBATCH --output={logs}/merge-%j.log
exec {binary} merge {qdir}
)",
      fmt::arg("tasks", job.tasks), fmt::arg("name", job.name), fmt::arg("job", job_name(job.name)),
      fmt::arg("hash", job.config_hash), fmt::arg("dir", dir),
      fmt::arg("resources", resource_lines(job, false)), fmt::arg("logs", shell_quote(dir + "/slurm/logs")),
      fmt::arg("binary", shell_quote(job.binary)), fmt::arg("qdir", shell_quote(dir)));
}

}  // namespace causalsweep
