// `causalsweep run` and `causalsweep plan`.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>

#include <fmt/format.h>

#include "causalsweep/backend.hpp"
#include "causalsweep/build_info.hpp"
#include "cli.hpp"
#include "journal.hpp"
#include "orchestrator.hpp"
#include "output.hpp"
#include "plot.hpp"
#include "report.hpp"
#include "shard.hpp"
#include "summary.hpp"

namespace cs = causalsweep;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string config_path, output_dir, backend, shard;
  std::vector<int> devices;
  int threads = -1, batch_size = -1;
  bool quiet = false;
  bool no_report = false;
};

Options options;  // filled by CLI11 while parsing, read by the subcommand callbacks

cs::SweepConfig load(const Options& o, bool sharded = false) {
  cs::SweepConfig config = o.config_path.empty()
                               ? cs::parse_config(cs::default_config_toml(), "<embedded default>")
                               : cs::load_config(o.config_path);
  if (!o.backend.empty())
    config.run.backend = o.backend == "cpu" ? cs::BackendKind::cpu
                         : o.backend == "cuda" ? cs::BackendKind::cuda
                                               : cs::BackendKind::auto_select;
  if (o.threads >= 0) config.run.threads = o.threads;
  if (o.batch_size >= 0) config.run.batch_size = o.batch_size;
  for (size_t i = 0; i < o.devices.size(); ++i)  // as run.devices in a config: each GPU once
    if (std::find(o.devices.begin(), o.devices.begin() + static_cast<std::ptrdiff_t>(i), o.devices[i]) !=
        o.devices.begin() + static_cast<std::ptrdiff_t>(i))
      throw cs::InputError(
          fmt::format("--devices: device {} is listed twice (each device may appear once)", o.devices[i]));
  if (!o.devices.empty()) config.run.devices = o.devices;
  if (!o.output_dir.empty()) config.run.output_dir = o.output_dir;
  // Shards of one sweep must find the same directory without being told: name it by the config.
  if (config.run.output_dir.empty())
    config.run.output_dir = "causalsweep-out/" + config.name + "-" +
                            (sharded ? cs::config_hash(config).substr(0, 8) : cs::utc_now("%Y%m%d-%H%M%S"));
  return config;
}

std::string human_seconds(double s) {
  return s < 120 ? fmt::format("{:.1f} s", s) : s < 7200 ? fmt::format("{:.1f} min", s / 60) : fmt::format("{:.1f} h", s / 3600);
}


// Runs the networks of `assigned` that the journal at `work`/journal does not hold yet, appending each
// finished batch durably; returns every result of `assigned`, in grid order.
cs::SweepOutcome run_resumable(const fs::path& work, const nlohmann::json& header, const cs::SweepGrid& grid,
                               const std::vector<uint64_t>& assigned, const cs::SweepPlan& plan, cs::Backend& backend,
                               const Options& o) {
  cs::SweepOutcome out;
  out.started_utc = cs::utc_now();
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) throw cs::InputError(fmt::format("cannot create '{}': {}", work.string(), ec.message()));
  cs::Journal journal(work / "journal", header);
  std::vector<char> wanted(grid.networks.size(), 0), done(grid.networks.size(), 0);
  for (uint64_t i : assigned) wanted[i] = 1;
  for (const cs::NetworkResult& r : journal.contents().results) {
    if (r.network_index >= wanted.size() || !wanted[r.network_index] || done[r.network_index])
      throw cs::InputError(fmt::format("journal '{}' records network {} {}; it is not this run's journal: move '{}' "
                                       "aside and rerun",
                                       (work / "journal").string(), r.network_index,
                                       r.network_index < done.size() && done[r.network_index] ? "twice" : "that this shard does not own",
                                       work.string()));
    done[r.network_index] = 1;
  }
  std::vector<cs::NetworkTask> todo;
  for (uint64_t i : assigned)
    if (!done[i]) todo.push_back(grid.networks[i]);
  if (!o.quiet && todo.size() < assigned.size())
    fmt::print(stderr, "resuming: {} of {} networks already done (journal '{}')\n", assigned.size() - todo.size(),
               assigned.size(), (work / "journal").string());
  // Backend and device in the bar, short enough to keep the line on one terminal row.
  cs::Progress progress(o.quiet, fmt::format("{}: {:.44}", backend.name(), backend.device()));
  cs::run_batches(todo, grid, plan, backend, progress,
                  [&](std::vector<cs::NetworkResult>&& results, const cs::PhaseTimes& times) { journal.append(results, times); });
  out.results = journal.contents().results;
  out.times = journal.contents().times;
  std::sort(out.results.begin(), out.results.end(),
            [](const auto& a, const auto& b) { return a.network_index < b.network_index; });
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.finished_utc = cs::utc_now();
  return out;
}

nlohmann::json journal_header(const cs::SweepConfig& config, const cs::ShardSpec& shard, const std::vector<uint64_t>& assigned) {
  return {{"version", cs::build_info::version},        {"git_commit", cs::build_info::git_commit},
          {"config_hash", cs::config_hash(config)},    {"shard_index", shard.index},
          {"shard_count", shard.count},                {"networks", assigned.size()},
          {"assignment_hash", cs::assignment_hash(assigned)}};
}

// Absolute, normalised, without a trailing '/' (so that filename() names the directory).
fs::path directory_path(const std::string& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  return p.has_filename() ? p : p.parent_path();
}

// The backend for this sweep. A model family without a CUDA path (or a build without CUDA) runs on
// the CPU backend: `auto` picks the CPU for it and `cuda` is refused with the reason.
std::unique_ptr<cs::Backend> choose_backend(const cs::SweepConfig& config, const cs::SweepGrid& grid, int threads,
                                            std::string& choice) {
  if (!grid.family || grid.family->has_cuda_path())
    return cs::select_backend(config.run.backend, threads, choice, config.run.devices);
  if (config.run.backend == cs::BackendKind::cuda)
    throw cs::InputError(fmt::format("--backend cuda: model family {} has no CUDA path in this build; use --backend cpu or auto",
                                     grid.family->name()));
  choice = fmt::format("backend cpu ({}: model family {} runs on the CPU backend)",
                       config.run.backend == cs::BackendKind::cpu ? "requested" : "auto", grid.family->name());
  return cs::make_cpu_backend(threads);
}

// Without a batch size from the user, the backend's own (the GPU wants thousands of networks in flight).
void use_preferred_batch_size(const cs::SweepConfig& config, const cs::Backend& backend, cs::SweepPlan& plan) {
  if (config.run.batch_size == 0 && backend.preferred_batch_size() > 0) plan.batch_size = backend.preferred_batch_size();
}

std::string interrupt_hint;  // its c_str() goes to the signal handler: assigned once, never changed after

// An unsharded run: journal in a hidden sibling '.NAME.inprogress'; once complete the results are
// published through a staging directory renamed into place, so the output directory appears whole
// or not at all, never holds the journal, and is never overwritten.
int run_whole(const Options& o, const cs::SweepConfig& config, const cs::SweepGrid& grid, bool output_given) {
  const fs::path out_dir = directory_path(config.run.output_dir);
  cs::check_output_directory(out_dir);
  const fs::path work = out_dir.parent_path() / ("." + out_dir.filename().string() + ".inprogress");
  cs::SweepPlan plan = cs::plan_sweep(config, grid, config.run.threads);
  interrupt_hint = "Rerun the same command to resume: " + causalsweep::cli::command_line() +
                   (output_given ? "" : " -o " + cs::shell_quote(out_dir.string()));
  cs::set_resume_hint(interrupt_hint.c_str());
  std::string choice;
  const auto backend = choose_backend(config, grid, plan.threads, choice);
  use_preferred_batch_size(config, *backend, plan);
  if (!o.quiet)
    fmt::print(stderr, "causalsweep {}: {} networks, {} runs; {}; {}\n", config.name, plan.networks, plan.runs, choice,
               backend->device());
  std::vector<uint64_t> all(grid.networks.size());
  std::iota(all.begin(), all.end(), 0);
  cs::SweepOutcome outcome = run_resumable(work, journal_header(config, {0, 1}, all), grid, all, plan, *backend, o);
  auto files = cs::run_directory_files(config, grid, plan, outcome,
                                       {backend->name(), backend->device(), choice, causalsweep::cli::command_line(),
                                        plan.threads, plan.batch_size, 0});
  {
    // The results go into a fresh staging directory that is renamed into place, so the output
    // directory never holds the journal, whenever a kill -9 lands; the journal goes last.
    const cs::CriticalSection publishing(true);
    const fs::path staging = out_dir.parent_path() / ("." + out_dir.filename().string() + ".publishing");
    std::error_code ec;
    fs::remove_all(staging, ec);
    for (const auto& [name, content] : files) cs::write_file_durably(staging / name, content);
    cs::sync_directory(staging);
    // RENAME_NOREPLACE: fails instead of replacing a directory that appeared meanwhile.
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, out_dir.c_str(), RENAME_NOREPLACE) != 0)
      throw cs::InputError(fmt::format("cannot move results from '{}' into '{}': {}", staging.string(),
                                       out_dir.string(), std::strerror(errno)));
    cs::sync_directory(out_dir.parent_path());
    fs::remove_all(work, ec);  // a kill before this leaves only a hidden sibling; the results are complete
  }
  for (const auto& [name, content] : files)
    if (name == "curves.csv")  // the two headline scores; report.html has every score
      fmt::print("{}", cs::summary_table(cs::parse_csv(content, "curves.csv"),
                                         {grid.family ? std::vector<std::string>{"fpr", "tpr_exc", "tpr_inh"}
                                                      : std::vector<std::string>{"corr_with_truth", "auc"}}));
  fmt::print("\n{} networks in {} on {}; results in {}/ (runs.csv, curves.csv, manifest.json)\n", plan.networks,
             human_seconds(outcome.wall_seconds), backend->name(), config.run.output_dir);
  // End by pointing at something to look at: figures and report.html, drawn from the files just written.
  if (o.no_report) return 0;
  if (cs::plot::find_gnuplot().empty()) {
    fmt::print("figures and report: install gnuplot-nox, then causalsweep plot {}\n", cs::shell_quote(out_dir.string()));
    return 0;
  }
  try {
    cs::plot::plot_run_directory(out_dir);
    fmt::print("report: {}\n", cs::report::write_report(out_dir).string());
  } catch (const std::exception& e) {
    // The results are complete and safe; only the pictures failed.
    fmt::print(stderr, "causalsweep: figures not drawn ({}); the results are complete. Retry: causalsweep plot {}\n",
               e.what(), cs::shell_quote(out_dir.string()));
  }
  return 0;
}

// One shard of a sharded sweep: its journal and, once complete, its manifest in
// OUT/shard-I-of-N/; `causalsweep merge OUT` combines the shards.
int run_shard(const Options& o, const cs::SweepConfig& config, const cs::SweepGrid& grid, const cs::ShardSpec& shard) {
  const fs::path out_dir = directory_path(config.run.output_dir);
  const std::string config_path =
      o.config_path.empty() ? "" : fs::absolute(o.config_path).lexically_normal().string();
  const nlohmann::json identity = cs::sweep_identity(config, config_path, shard.count);
  cs::claim_sweep_directory(out_dir, identity);
  const std::vector<uint64_t> assigned = cs::assign_shards(grid, shard.count)[static_cast<size_t>(shard.index)];
  const fs::path work = out_dir / cs::shard_directory_name(shard);
  interrupt_hint = "Rerun the same command to resume: " + cs::shard_command(identity, out_dir, shard.index);
  cs::set_resume_hint(interrupt_hint.c_str());

  cs::SweepGrid mine = grid;  // for the memory plan only: this shard's networks
  mine.networks.clear();
  for (uint64_t i : assigned) mine.networks.push_back(grid.networks[i]);
  cs::SweepPlan plan = cs::plan_sweep(config, mine, config.run.threads);
  std::string choice;
  const auto backend = choose_backend(config, grid, plan.threads, choice);
  use_preferred_batch_size(config, *backend, plan);
  if (!o.quiet)
    fmt::print(stderr, "causalsweep {}: shard {}/{}: {} of {} networks; {}; {}\n", config.name, shard.index,
               shard.count, assigned.size(), grid.networks.size(), choice, backend->device());
  const cs::SweepOutcome outcome =
      run_resumable(work, journal_header(config, shard, assigned), grid, assigned, plan, *backend, o);
  if (!fs::exists(work / "manifest.json")) {
    char hostname[256] = "unknown";
    gethostname(hostname, sizeof hostname - 1);
    const nlohmann::json manifest = {
        {"tool", "causalsweep"},
        {"version", cs::build_info::version},
        {"git_commit", cs::build_info::git_commit},
        {"config_hash", cs::config_hash(config)},
        {"shard", {{"index", shard.index}, {"count", shard.count}, {"networks", assigned.size()}}},
        {"command", causalsweep::cli::command_line()},
        {"backend",
         {{"name", backend->name()}, {"device", backend->device()}, {"choice", choice}, {"threads", plan.threads},
          {"batch_size", plan.batch_size}}},
        {"host", {{"hostname", hostname}, {"slurm_job", std::getenv("SLURM_JOB_ID") ? std::getenv("SLURM_JOB_ID") : ""}}},
        {"started_utc", outcome.started_utc},
        {"finished_utc", outcome.finished_utc},
        {"seconds", {{"wall", outcome.wall_seconds}}},
    };
    const cs::CriticalSection publishing(true);
    cs::write_file_atomically(work / "manifest.json", manifest.dump(2) + "\n");
  }
  fmt::print("shard {}/{} complete: {} networks in {}/; when every shard is: causalsweep merge {}\n", shard.index,
             shard.count, assigned.size(), work.string(), cs::shell_quote(out_dir.string()));
  return 0;
}

int run_command(const Options& o) {
  cs::install_interrupt_handlers("Rerun the same command to resume.");
  const std::optional<cs::ShardSpec> shard =
      o.shard.empty() ? cs::shard_from_slurm_environment() : std::optional(cs::parse_shard(o.shard));
  cs::SweepConfig config = load(o, shard.has_value());
  const bool output_given = !o.output_dir.empty();
  const cs::SweepGrid grid = cs::expand_grid(config);
  return shard ? run_shard(o, config, grid, *shard) : run_whole(o, config, grid, output_given);
}

int plan_command(const Options& o) {
  const cs::SweepConfig config = load(o);
  const cs::SweepGrid grid = cs::expand_grid(config);
  const cs::SweepPlan plan = cs::plan_sweep(config, grid, config.run.threads);
  const auto& a = config.axes;
  fmt::print("sweep {} ({})\n", config.name, config.source_name);
  if (grid.family) {
    std::string swept;
    for (int i : grid.swept_parameters)
      swept += fmt::format("{} {}  ", grid.family->parameters()[static_cast<size_t>(i)].key,
                           a.parameters[static_cast<size_t>(i)].size());
    fmt::print("  model family {}; axes: {}seeds {}\n", grid.family->name(), swept, a.seeds.size());
    fmt::print("  runs simulated: {}\n  estimators: {}\n  result rows: at most {}\n", plan.networks,
               grid.estimators.size(), plan.result_rows);
  } else {
    fmt::print("  axes: n_neurons {}  timesteps {}  p_connect {}  eta {}  observed_ratio {}  seeds {}{}\n",
               a.n_neurons.size(), a.timesteps.size(), a.p_connect.size(), a.eta.size(), a.observed_ratio.size(),
               a.seeds.size(), a.perturb ? "  (perturbation mode)" : "");
    fmt::print("  networks simulated: {}\n  runs (network x observed ratio): {}\n  estimators: {}\n  result rows: {}\n",
               plan.networks, plan.runs, grid.estimators.size(), plan.result_rows);
  }
  fmt::print("  memory: about {:.1f} MiB of {:.1f} MiB available\n", static_cast<double>(plan.memory_bytes) / (1 << 20),
             static_cast<double>(plan.memory_available) / (1 << 20));
  fmt::print("  work: {:.3g} multiply-add equivalents; about {} on {} CPU thread(s) (nominal estimate)\n", plan.cost,
             human_seconds(plan.estimated_seconds), plan.threads);
  fmt::print("  output: {}\n", config.run.output_dir);
  return 0;
}

}  // namespace

namespace causalsweep::cli {

void add_run_commands(CLI::App& app) {
  Options& o = options;
  auto* run = app.add_subcommand("run", "Run a sweep (the embedded default sweep when no CONFIG is given)");
  run->add_option("config", o.config_path, "TOML sweep config")->check(CLI::ExistingFile);
  run->add_option("-o,--output", o.output_dir,
                  "Output directory (must not exist; rerunning with the same one resumes); with --shard the sweep "
                  "directory all shards share");
  run->add_option("--backend", o.backend, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  run->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
  run->add_option("--devices", o.devices,
                  "CUDA devices for --backend cuda/auto, e.g. 0,1 (default: every visible device, e.g. the GPUs SLURM "
                  "gave the task)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1023));
  run->add_option("--batch-size", o.batch_size, "Networks per batch (0: automatic; results do not change)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--shard", o.shard,
                  "Run shard I of N (0 <= I < N) into OUTPUT/shard-I-of-N/; default from SLURM_ARRAY_TASK_ID and "
                  "SLURM_ARRAY_TASK_COUNT in a job array");
  run->add_flag("-q,--quiet", o.quiet, "No progress output on stderr");
  run->add_flag("--no-report", o.no_report, "Do not draw figures and report.html after the run");
  run->callback([] { exit_code() = run_command(options); });

  auto* plan = app.add_subcommand("plan", "Show grid size, memory and time estimate; runs nothing");
  plan->add_option("config", o.config_path, "TOML sweep config")->check(CLI::ExistingFile);
  plan->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
  plan->callback([] { exit_code() = plan_command(options); });
}

}  // namespace causalsweep::cli
