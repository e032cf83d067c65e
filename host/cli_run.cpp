// `causalsweep run` and `causalsweep plan`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include <fmt/format.h>

#include "causalsweep/backend.hpp"
#include "causalsweep/build_info.hpp"
#include "causalsweep/flags.hpp"
#include "cli.hpp"
#include "orchestrator.hpp"
#include "output.hpp"

namespace cs = causalsweep;

namespace {

struct Options {
  std::string config_path, output_dir, backend;
  int threads = -1, batch_size = -1;
  bool quiet = false;
};

Options options;  // filled by CLI11 while parsing, read by the subcommand callbacks

cs::SweepConfig load(const Options& o) {
  cs::SweepConfig config = o.config_path.empty()
                               ? cs::parse_config(cs::default_config_toml(), "<embedded default>")
                               : cs::load_config(o.config_path);
  if (!o.backend.empty())
    config.run.backend = o.backend == "cpu" ? cs::BackendKind::cpu
                         : o.backend == "cuda" ? cs::BackendKind::cuda
                                               : cs::BackendKind::auto_select;
  if (o.threads >= 0) config.run.threads = o.threads;
  if (o.batch_size >= 0) config.run.batch_size = o.batch_size;
  if (!o.output_dir.empty()) config.run.output_dir = o.output_dir;
  if (config.run.output_dir.empty())
    config.run.output_dir = "causalsweep-out/" + config.name + "-" + cs::utc_now("%Y%m%d-%H%M%S");
  return config;
}

std::string human_seconds(double s) {
  return s < 120 ? fmt::format("{:.1f} s", s) : s < 7200 ? fmt::format("{:.1f} min", s / 60) : fmt::format("{:.1f} h", s / 3600);
}

// The curve table: one row per grid point, one column per estimator, corr_with_truth mean +- std.
void print_curve_table(const cs::SweepGrid& grid, const std::vector<cs::CurvePoint>& curves) {
  std::set<int> ns, ts;
  std::set<double> ps, etas;
  for (const auto& t : grid.networks) {
    ns.insert(t.n_neurons);
    ts.insert(t.timesteps);
    ps.insert(t.p_connect);
    etas.insert(t.eta);
  }
  using Row = std::tuple<int, int, double, double, double>;
  std::map<Row, std::map<int, const cs::CurvePoint*>> rows;
  std::vector<Row> order;
  for (const auto& c : curves) {
    if (c.score_index != 0) continue;
    const Row row{c.n_neurons, c.timesteps, c.p_connect, c.eta, c.observed_ratio};
    if (!rows.count(row)) order.push_back(row);
    rows[row][c.estimator_index] = &c;
  }
  std::string header;
  if (ns.size() > 1) header += fmt::format("{:>6} ", "n");
  if (ts.size() > 1) header += fmt::format("{:>8} ", "T");
  if (ps.size() > 1) header += fmt::format("{:>6} ", "p");
  if (etas.size() > 1) header += fmt::format("{:>6} ", "eta");
  header += fmt::format("{:>6} ", "ratio");
  for (const auto& e : grid.estimators) header += fmt::format("{:>17} ", e.label.substr(0, 17));
  fmt::print("corr_with_truth, mean +- std over seeds:\n{}\n", header);
  for (const Row& row : order) {
    const auto& [n, T, p, eta, ratio] = row;
    std::string line;
    if (ns.size() > 1) line += fmt::format("{:>6} ", n);
    if (ts.size() > 1) line += fmt::format("{:>8} ", T);
    if (ps.size() > 1) line += fmt::format("{:>6.3g} ", p);
    if (etas.size() > 1) line += fmt::format("{:>6.3g} ", eta);
    line += fmt::format("{:>6.3g} ", ratio);
    for (size_t e = 0; e < grid.estimators.size(); ++e) {
      const auto it = rows[row].find(static_cast<int>(e));
      line += it == rows[row].end() || it->second->count == 0
                  ? fmt::format("{:>17} ", "nan")
                  : fmt::format("{:>17} ", fmt::format("{:.3f} +- {:.3f}", it->second->mean, it->second->std));
    }
    fmt::print("{}\n", line);
  }
}

nlohmann::json make_manifest(const cs::SweepConfig& config, const cs::SweepGrid& grid, const cs::SweepPlan& plan,
                             const cs::SweepOutcome& outcome, const cs::Backend& backend, const std::string& choice,
                             const std::string& command, double format_seconds) {
  std::map<std::string, int64_t> flag_counts;
  int64_t saturated = 0;
  for (const auto& r : outcome.results) {
    saturated += r.saturated_logits;
    for (const auto& run : r.runs)
      for (uint32_t bit = 0; bit < 32; ++bit)
        if (run.flags & (1u << bit)) ++flag_counts[cs::flags_to_string(1u << bit)];
  }
  char hostname[256] = "unknown";
  gethostname(hostname, sizeof hostname - 1);
  const auto& t = outcome.times;
  return {
      {"tool", "causalsweep"},
      {"version", cs::build_info::version},
      {"git_commit", cs::build_info::git_commit},
      {"compiler", cs::build_info::compiler},
      {"build_type", cs::build_info::build_type},
      {"cuda_build", cs::build_info::cuda},
      {"command", command},
      {"config", cs::to_json(config)},
      {"config_text", config.source_text},
      {"grid",
       {{"networks", plan.networks}, {"runs", plan.runs}, {"result_rows", plan.result_rows},
        {"observed_ratios", grid.observed_ratios}, {"estimators", grid.estimators.size()}}},
      {"backend",
       {{"name", backend.name()}, {"device", backend.device()}, {"choice", choice}, {"threads", plan.threads},
        {"batch_size", plan.batch_size}}},
      {"host", {{"hostname", hostname}, {"gpus", cs::query_cuda_devices().description}}},
      {"started_utc", outcome.started_utc},
      {"finished_utc", outcome.finished_utc},
      {"seconds",
       {{"wall", outcome.wall_seconds},
        {"thread_seconds_per_phase",
         {{"generate", t.generate}, {"simulate_and_accumulate", t.simulate}, {"solve", t.solve}, {"lasso", t.lasso},
          {"score_and_reduce", t.reduce}, {"format_outputs", format_seconds}}}}},
      {"flag_counts", flag_counts},
      {"saturated_logits", saturated},
      {"files", {"runs.csv", "curves.csv", "manifest.json"}},
  };
}

int run_command(const Options& o) {
  const cs::SweepConfig config = load(o);
  const std::filesystem::path out_dir = config.run.output_dir;
  cs::check_output_directory(out_dir);
  const cs::SweepGrid grid = cs::expand_grid(config);
  const cs::SweepPlan plan = cs::plan_sweep(config, grid, config.run.threads);
  std::string choice;
  const auto backend = cs::select_backend(config.run.backend, plan.threads, choice);
  if (!o.quiet)
    fmt::print(stderr, "causalsweep {}: {} networks, {} runs; {}; {}\n", config.name, plan.networks, plan.runs, choice,
               backend->device());
  cs::Progress progress(o.quiet, backend->name());
  const cs::SweepOutcome outcome = cs::run_sweep(grid, plan, *backend, progress);

  const auto format_start = std::chrono::steady_clock::now();
  std::string runs = cs::runs_csv(grid, outcome), curves = cs::curves_csv(grid, outcome);
  const double format_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - format_start).count();
  const auto manifest = make_manifest(config, grid, plan, outcome, *backend, choice, causalsweep::cli::command_line(), format_seconds);
  cs::write_run_directory(out_dir, {{"runs.csv", std::move(runs)},
                                    {"curves.csv", std::move(curves)},
                                    {"manifest.json", manifest.dump(2) + "\n"}});
  print_curve_table(grid, outcome.curves);
  fmt::print("\n{} networks in {} on {}; results in {}/ (runs.csv, curves.csv, manifest.json)\n", plan.networks,
             human_seconds(outcome.wall_seconds), backend->name(), out_dir.string());
  return 0;
}

int plan_command(const Options& o) {
  const cs::SweepConfig config = load(o);
  const cs::SweepGrid grid = cs::expand_grid(config);
  const cs::SweepPlan plan = cs::plan_sweep(config, grid, config.run.threads);
  const auto& a = config.axes;
  fmt::print("sweep {} ({})\n", config.name, config.source_name);
  fmt::print("  axes: n_neurons {}  timesteps {}  p_connect {}  eta {}  observed_ratio {}  seeds {}{}\n",
             a.n_neurons.size(), a.timesteps.size(), a.p_connect.size(), a.eta.size(), a.observed_ratio.size(),
             a.seeds.size(), a.perturb ? "  (perturbation mode)" : "");
  fmt::print("  networks simulated: {}\n  runs (network x observed ratio): {}\n  estimators: {}\n  result rows: {}\n",
             plan.networks, plan.runs, grid.estimators.size(), plan.result_rows);
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
  run->add_option("-o,--output", o.output_dir, "Output directory (must not exist)");
  run->add_option("--backend", o.backend, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  run->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
  run->add_option("--batch-size", o.batch_size, "Networks per batch (0: automatic; results do not change)")
      ->check(CLI::NonNegativeNumber);
  run->add_flag("-q,--quiet", o.quiet, "No progress output on stderr");
  run->callback([] { exit_code() = run_command(options); });

  auto* plan = app.add_subcommand("plan", "Show grid size, memory and time estimate; runs nothing");
  plan->add_option("config", o.config_path, "TOML sweep config")->check(CLI::ExistingFile);
  plan->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::NonNegativeNumber);
  plan->callback([] { exit_code() = plan_command(options); });
}

}  // namespace causalsweep::cli
