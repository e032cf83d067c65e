// `causalsweep submit --slurm` and `causalsweep merge`.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "cli.hpp"
#include "merge.hpp"
#include "orchestrator.hpp"
#include "output.hpp"
#include "shard.hpp"
#include "slurm.hpp"

namespace cs = causalsweep;
namespace fs = std::filesystem;

namespace {

struct SubmitOptions {
  std::string config_path, output_dir;
  bool slurm = false, dry_run = false;
  int tasks = -1, throttle = -1, gpus_per_task = -1, cpus_per_task = -1;
  std::string partition, account, time, mem;
};
SubmitOptions submit_options;

struct MergeOptions {
  std::string dir;
  bool quiet = false;
};
MergeOptions merge_options;

struct Captured {
  int status;
  std::string output;  // stdout and stderr together
};

Captured capture(const std::string& command) {
  Captured c{-1, ""};
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return c;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) c.output.append(buffer, n);
  const int status = ::pclose(pipe);
  c.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!c.output.empty() && (c.output.back() == '\n' || c.output.back() == '\r')) c.output.pop_back();
  return c;
}

// The job id --parsable prints ("id" or "id;cluster") on the last line, after any warnings.
std::string parsable_job_id(const std::string& output) {
  const std::string last = output.substr(output.find_last_of('\n') == std::string::npos ? 0 : output.find_last_of('\n') + 1);
  const std::string id = last.substr(0, last.find(';'));
  return !id.empty() && id.find_first_not_of("0123456789") == std::string::npos ? id : "";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  for (const auto& dir : std::views::split(std::string_view(path), ':'))
    if (::access((fs::path(std::string_view(dir.begin(), dir.end())) / program).c_str(), X_OK) == 0) return true;
  return false;
}

int submit_command(const SubmitOptions& o) {
  if (!o.slurm)
    throw cs::InputError("submit: say which scheduler: --slurm (the only one supported; causalsweep writes and submits "
                         "sbatch scripts, it does not dispatch jobs itself)");
  cs::SweepConfig config = o.config_path.empty() ? cs::parse_config(cs::default_config_toml(), "<embedded default>")
                                                 : cs::load_config(o.config_path);
  cs::SlurmOptions& s = config.slurm;
  if (o.tasks >= 0) s.tasks = o.tasks;
  if (o.throttle >= 0) s.throttle = o.throttle;
  if (o.gpus_per_task >= 0) s.gpus_per_task = o.gpus_per_task;
  if (o.cpus_per_task >= 0) s.cpus_per_task = o.cpus_per_task;
  for (auto [flag, value, into] : {std::tuple{"--partition", &o.partition, &s.partition},
                                   std::tuple{"--account", &o.account, &s.account}, std::tuple{"--time", &o.time, &s.time},
                                   std::tuple{"--mem", &o.mem, &s.mem}}) {
    if (value->empty()) continue;
    if (value->find_first_of(" \t\n\r'\"\\$`;") != std::string::npos)
      throw cs::InputError(fmt::format("{} '{}': must be one plain token (no spaces or quotes)", flag, *value));
    *into = *value;
  }
  if (!o.output_dir.empty()) config.run.output_dir = o.output_dir;
  if (config.run.output_dir.empty())
    config.run.output_dir = "causalsweep-out/" + config.name + "-" + cs::config_hash(config).substr(0, 8);

  const cs::SweepGrid grid = cs::expand_grid(config);
  const cs::SweepPlan plan = cs::plan_sweep(config, grid, std::max(1, s.cpus_per_task));
  cs::SlurmJob job;
  job.name = config.name;
  job.config_hash = cs::config_hash(config);
  job.binary = cs::self_executable();
  job.config_path = o.config_path.empty() ? "" : fs::absolute(o.config_path).lexically_normal().string();
  job.output_dir = fs::absolute(config.run.output_dir).lexically_normal();
  if (!job.output_dir.has_filename()) job.output_dir = job.output_dir.parent_path();
  job.networks = grid.networks.size();
  job.tasks = s.tasks > 0 ? s.tasks : cs::default_task_count(plan.cost, job.networks, s.cpus_per_task);
  if (static_cast<uint64_t>(job.tasks) > job.networks)
    throw cs::InputError(fmt::format("--tasks {} (or key 'slurm.tasks'): more array tasks than the {} networks of the "
                                     "grid; use at most {}",
                                     job.tasks, job.networks, job.networks));
  job.options = s;
  const std::string array = cs::array_script(job), merge = cs::merge_script(job);
  const double task_seconds = plan.cost / job.tasks / (cs::nominal_rate_per_thread * std::max(1, s.cpus_per_task));
  const std::string summary = fmt::format(
      "sweep {} ({}), config hash {}\n  networks: {}  runs: {}  estimators: {}  result rows: {}\n  array tasks: {} "
      "(about {} networks and {:.3g} s of nominal work each with {} CPU(s)){}\n  output: {}\n",
      config.name, config.source_name, job.config_hash, plan.networks, plan.runs, grid.estimators.size(),
      plan.result_rows, job.tasks, (job.networks + static_cast<uint64_t>(job.tasks) - 1) / static_cast<uint64_t>(job.tasks),
      task_seconds, std::max(1, s.cpus_per_task), s.throttle > 0 ? fmt::format(", at most {} at once", s.throttle) : "",
      job.output_dir.string());
  if (o.dry_run) {
    fmt::print("{}\n# ---- {}/slurm/array.sbatch ----\n{}\n# ---- {}/slurm/merge.sbatch (after the array: "
               "--dependency=afterok) ----\n{}\n(dry run: nothing written or submitted)\n",
               summary, job.output_dir.string(), array, job.output_dir.string(), merge);
    return 0;
  }

  cs::claim_sweep_directory(job.output_dir,
                            cs::sweep_identity(config, job.config_path, job.tasks));
  const fs::path slurm_dir = job.output_dir / "slurm";
  std::error_code ec;
  fs::create_directories(slurm_dir / "logs", ec);
  if (ec) throw cs::InputError(fmt::format("cannot create '{}': {}", (slurm_dir / "logs").string(), ec.message()));
  cs::write_file_atomically(slurm_dir / "array.sbatch", array);
  cs::write_file_atomically(slurm_dir / "merge.sbatch", merge);
  const std::string array_path = cs::shell_quote((slurm_dir / "array.sbatch").string());
  const std::string merge_path = cs::shell_quote((slurm_dir / "merge.sbatch").string());
  const std::string by_hand = fmt::format("submit them by hand:\n  jid=$(sbatch --parsable {}) && sbatch "
                                          "--dependency=afterok:${{jid%%;*}} --kill-on-invalid-dep=yes {}",
                                          array_path, merge_path);
  fmt::print("{}", summary);
  if (!on_path("sbatch"))
    throw cs::InputError(fmt::format("sbatch is not on PATH (not a SLURM submit host?); the job scripts are written in "
                                     "'{}'; {}",
                                     slurm_dir.string(), by_hand));
  const Captured a = capture("sbatch --parsable " + array_path);
  const std::string array_id = parsable_job_id(a.output);
  if (a.status != 0 || array_id.empty())
    throw cs::InputError(fmt::format("sbatch refused the job array (exit {}): {}\nthe job scripts are in '{}'; fix the "
                                     "request (flags or [slurm] keys) and submit again, or {}",
                                     a.status, a.output, slurm_dir.string(), by_hand));
  // kill-on-invalid-dep: when a task fails for good the merge is cancelled instead of pending forever.
  const Captured m = capture(fmt::format("sbatch --parsable --dependency=afterok:{} --kill-on-invalid-dep=yes {}",
                                         array_id, merge_path));
  const std::string merge_id = parsable_job_id(m.output);
  if (m.status != 0 || merge_id.empty())
    throw cs::InputError(fmt::format("the job array was submitted (job {}) but sbatch refused the merge job (exit {}): "
                                     "{}\nsubmit it by hand: sbatch --dependency=afterok:{} {}",
                                     array_id, m.status, m.output, array_id, merge_path));
  cs::write_file_atomically(slurm_dir / "jobs.json",
                            nlohmann::json{{"array_job", array_id}, {"merge_job", merge_id}, {"tasks", job.tasks},
                                           {"submitted_utc", cs::utc_now()}}
                                    .dump(2) +
                                "\n");
  fmt::print("submitted job array {} ({} tasks) and merge job {} (after the array succeeds)\n  watch: squeue -j {},{}\n"
             "  logs: {}/logs/\n  results: {}/ (runs.csv, curves.csv, manifest.json once merged)\n",
             array_id, job.tasks, merge_id, array_id, merge_id, slurm_dir.string(), job.output_dir.string());
  return 0;
}

int merge_command(const MergeOptions& o) {
  if (!cs::merge_sweep(o.dir, causalsweep::cli::command_line(), o.quiet))
    fmt::print("'{}' is already merged (manifest.json exists; never overwritten)\n", o.dir);
  return 0;
}

}  // namespace

namespace causalsweep::cli {

void add_cluster_commands(CLI::App& app) {
  SubmitOptions& s = submit_options;
  auto* submit = app.add_subcommand(
      "submit", "Write and submit a SLURM job array (one shard per task) and a merge job that waits for it");
  submit->add_option("config", s.config_path, "TOML sweep config")->check(CLI::ExistingFile);
  submit->add_flag("--slurm", s.slurm, "Submit to SLURM with sbatch (required: the only scheduler supported)");
  submit->add_option("-o,--output", s.output_dir, "Sweep directory (default: causalsweep-out/<name>-<config hash>)");
  submit->add_option("--tasks", s.tasks, "Array tasks = shards (default: key slurm.tasks, else from the cost)")
      ->check(CLI::PositiveNumber);
  submit->add_option("--throttle", s.throttle, "At most N tasks running at once (%N)")->check(CLI::PositiveNumber);
  submit->add_option("--partition", s.partition, "sbatch --partition");
  submit->add_option("--account", s.account, "sbatch --account");
  submit->add_option("--time", s.time, "sbatch --time per task (e.g. 2:00:00)");
  submit->add_option("--mem", s.mem, "sbatch --mem per task (e.g. 8G)");
  submit->add_option("--gpus-per-task", s.gpus_per_task, "sbatch --gpus-per-task")->check(CLI::NonNegativeNumber);
  submit->add_option("--cpus-per-task", s.cpus_per_task, "sbatch --cpus-per-task (also the threads per task)")
      ->check(CLI::PositiveNumber);
  submit->add_flag("--dry-run", s.dry_run, "Print the grid summary and both scripts; write and submit nothing");
  submit->callback([] { exit_code() = submit_command(submit_options); });

  MergeOptions& m = merge_options;
  auto* merge = app.add_subcommand("merge", "Combine the shards of a sweep directory into runs.csv, curves.csv, "
                                            "manifest.json (as one run would write them)");
  merge->add_option("dir", m.dir, "Sweep directory (the -o of the shards)")->required();
  merge->add_flag("-q,--quiet", m.quiet, "Print nothing on success");
  merge->callback([] { exit_code() = merge_command(merge_options); });
}

}  // namespace causalsweep::cli
