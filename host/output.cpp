#include "output.hpp"

#include "cpu_network.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include <chrono>
#include <map>

#include "causalsweep/build_info.hpp"
#include "causalsweep/cuda_devices.hpp"
#include "causalsweep/flags.hpp"
#include "shard.hpp"

namespace causalsweep {
namespace fs = std::filesystem;
namespace {

// Shortest text that reads back as the same double, always with a decimal point or exponent so
// pandas types the column as float (1.0, not 1); NaN as pandas and numpy spell it.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  std::string text = fmt::format("{}", v);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

}  // namespace

void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomically(const fs::path& path, const std::string& content) {
  const fs::path temp = path.parent_path() / fmt::format(".{}.tmp-{}", path.filename().string(), static_cast<long>(::getpid()));
  try {
    write_file_durably(temp, content);
  } catch (...) {
    std::error_code ec;
    fs::remove(temp, ec);
    throw;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::error_code ec;
    fs::remove(temp, ec);
    throw InputError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(error)));
  }
  sync_directory(path.parent_path());
}

void check_output_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec))
    throw InputError(fmt::format("output directory '{}' already exists; results are never overwritten: choose "
                                 "another with -o DIR (or key 'run.output') or remove it",
                                 dir.string()));
  const fs::path parent = fs::absolute(dir).parent_path();
  fs::create_directories(parent, ec);
  if (ec || ::access(parent.c_str(), W_OK) != 0)
    throw InputError(fmt::format("output directory '{}': cannot create or write its parent '{}': {}", dir.string(),
                                 parent.string(), ec ? ec.message() : std::strerror(errno)));
}

void write_file_durably(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);  // e.g. matrices/ inside a run directory
  FILE* file = std::fopen(path.c_str(), "wb");
  bool ok = file != nullptr && std::fwrite(content.data(), 1, content.size(), file) == content.size() &&
            std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  const int error = errno;
  if (file != nullptr) ok = (std::fclose(file) == 0) && ok;
  if (!ok) throw InputError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(error)));
}

// Another model family's runs: its swept parameters are the axis columns; no observed ratio.
std::string family_runs_csv(const SweepGrid& grid, const SweepOutcome& outcome) {
  std::string csv = "network,seed,";
  for (const std::string& name : network_axis_names(grid)) csv += name + ",";
  csv += "estimator,method,score,value,flags\n";
  auto out = std::back_inserter(csv);
  for (const NetworkResult& r : outcome.results) {
    const NetworkTask& t = grid.networks[r.network_index];
    std::string axes;
    for (double v : network_axis_values(grid, t)) axes += number(v) + ",";
    for (const RunResult& run : r.runs) {
      const EstimatorSpec& e = grid.estimators[static_cast<size_t>(run.estimator_index)];
      for (int s = 0; s < score_count; ++s)
        if (run.has(s))
          fmt::format_to(out, "{},{},{}{},{},{},{},{}\n", t.index, t.seed, axes, e.label, to_string(e.method),
                         score_names[s], number(run.score[s]), flags_to_string(run.flags));
    }
  }
  return csv;
}

std::string runs_csv(const SweepGrid& grid, const SweepOutcome& outcome) {
  if (grid.family) return family_runs_csv(grid, outcome);
  std::string csv =
      "network,seed,n_neurons,timesteps,p_connect,eta,perturb,observed_ratio,observed,estimator,method,score,value,"
      "flags\n";
  auto out = std::back_inserter(csv);
  for (const NetworkResult& r : outcome.results) {
    const NetworkTask& t = grid.networks[r.network_index];
    for (const RunResult& run : r.runs) {
      const EstimatorSpec& e = grid.estimators[static_cast<size_t>(run.estimator_index)];
      for (int s = 0; s < score_count; ++s)
        if (run.has(s))  // scores that do not apply to the estimator have no row
          fmt::format_to(out, "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", t.index, t.seed, t.n_neurons, t.timesteps,
                       number(t.p_connect), number(t.eta), t.perturb ? "true" : "false",
                       number(grid.observed_ratios[static_cast<size_t>(run.ratio_index)]), run.observed, e.label,
                       to_string(e.method), score_names[s], number(run.score[s]), flags_to_string(run.flags));
    }
  }
  return csv;
}

std::string curves_csv(const SweepGrid& grid, const SweepOutcome& outcome) {
  if (grid.family) {
    std::string csv;
    for (const std::string& name : network_axis_names(grid)) csv += name + ",";
    csv += "estimator,method,score,count,nan_count,mean,std,sem,ci95_low,ci95_high\n";
    auto out = std::back_inserter(csv);
    for (const CurvePoint& c : outcome.curves) {
      const EstimatorSpec& e = grid.estimators[static_cast<size_t>(c.estimator_index)];
      for (double v : c.parameters) fmt::format_to(out, "{},", number(v));
      fmt::format_to(out, "{},{},{},{},{},{},{},{},{},{}\n", e.label, to_string(e.method), score_names[c.score_index],
                     c.count, c.nan_count, number(c.mean), number(c.std), number(c.sem), number(c.ci_low),
                     number(c.ci_high));
    }
    return csv;
  }
  std::string csv =
      "n_neurons,timesteps,p_connect,eta,observed_ratio,estimator,method,score,count,nan_count,mean,std,sem,ci95_low,"
      "ci95_high\n";
  auto out = std::back_inserter(csv);
  for (const CurvePoint& c : outcome.curves) {
    const EstimatorSpec& e = grid.estimators[static_cast<size_t>(c.estimator_index)];
    fmt::format_to(out, "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", c.n_neurons, c.timesteps, number(c.p_connect),
                   number(c.eta), number(c.observed_ratio), e.label, to_string(e.method), score_names[c.score_index],
                   c.count, c.nan_count, number(c.mean), number(c.std), number(c.sem), number(c.ci_low),
                   number(c.ci_high));
  }
  return csv;
}

nlohmann::json make_manifest(const SweepConfig& config, const SweepGrid& grid, const SweepPlan& plan,
                             const SweepOutcome& outcome, const ManifestProvenance& p) {
  std::map<std::string, int64_t> flag_counts;
  int64_t saturated = 0;
  for (const auto& r : outcome.results) {
    saturated += r.saturated_logits;
    for (const auto& run : r.runs)
      for (uint32_t bit = 0; bit < 32; ++bit)
        if (run.flags & (1u << bit)) ++flag_counts[flags_to_string(1u << bit)];
  }
  char hostname[256] = "unknown";
  gethostname(hostname, sizeof hostname - 1);
  const auto& t = outcome.times;
  return {
      {"tool", "causalsweep"},
      {"version", build_info::version},
      {"git_commit", build_info::git_commit},
      {"compiler", build_info::compiler},
      {"build_type", build_info::build_type},
      {"cuda_build", build_info::cuda},
      {"command", p.command},
      {"config", to_json(config)},
      {"config_text", config.source_text},
      {"config_hash", config_hash(config)},
      {"grid",
       {{"networks", plan.networks}, {"runs", plan.runs}, {"result_rows", plan.result_rows},
        {"observed_ratios", grid.observed_ratios}, {"estimators", grid.estimators.size()}}},
      {"backend",
       {{"name", p.backend_name}, {"device", p.device}, {"choice", p.choice}, {"threads", p.threads},
        {"batch_size", p.batch_size}}},
      {"host", {{"hostname", hostname}, {"gpus", query_cuda_devices().description}}},
      {"started_utc", outcome.started_utc},
      {"finished_utc", outcome.finished_utc},
      {"seconds",
       {{"wall", outcome.wall_seconds},
        {"thread_seconds_per_phase",
         {{"generate", t.generate}, {"simulate_and_accumulate", t.simulate}, {"solve", t.solve}, {"lasso", t.lasso},
          {"score_and_reduce", t.reduce}, {"format_outputs", p.format_seconds}}}}},
      {"flag_counts", flag_counts},
      {"saturated_logits", saturated},
      {"files", {"runs.csv", "curves.csv", "manifest.json"}},
  };
}

std::vector<std::pair<std::string, std::string>> run_directory_files(const SweepConfig& config, const SweepGrid& grid,
                                                                     const SweepPlan& plan, SweepOutcome& outcome,
                                                                     ManifestProvenance provenance,
                                                                     const nlohmann::json& manifest_extra) {
  const auto start = std::chrono::steady_clock::now();
  outcome.curves = reduce_curves(grid, outcome.results);
  outcome.times.reduce += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto format_start = std::chrono::steady_clock::now();
  std::string runs = runs_csv(grid, outcome), curves = curves_csv(grid, outcome);
  provenance.format_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - format_start).count();
  std::vector<std::pair<std::string, std::string>> files = {{"runs.csv", std::move(runs)},
                                                              {"curves.csv", std::move(curves)}};
  if (!grid.roc_seeds.empty()) files.emplace_back("roc.csv", roc_csv(grid, outcome.results));
  for (auto& file : kept_matrix_files(config, grid)) files.push_back(std::move(file));
  nlohmann::json manifest = make_manifest(config, grid, plan, outcome, provenance);
  if (manifest_extra.is_object()) manifest.update(manifest_extra);
  manifest["files"] = nlohmann::json::array();
  for (const auto& [name, content] : files)
    if (name.rfind("matrices/", 0) != 0) manifest["files"].push_back(name);
  if (config.keep_matrices != KeepMatrices::none) manifest["files"].push_back("matrices/");
  manifest["files"].push_back("manifest.json");
  files.emplace_back("manifest.json", manifest.dump(2) + "\n");
  return files;
}

std::vector<std::pair<std::string, std::string>> kept_matrix_files(const SweepConfig& config, const SweepGrid& grid) {
  std::vector<std::pair<std::string, std::string>> files;
  if (config.keep_matrices == KeepMatrices::none) return files;
  // Networks are pure functions of their task, so the kept runs are estimated again here, on the
  // CPU, exactly as they were scored: no matrices travel through batches, journals or merges.
  const uint64_t first_seed = config.axes.seeds.front();
  std::string index = "network,seed,observed,estimator,truth,estimate\n";
  auto matrix_csv = [](const Eigen::MatrixXd& m) {
    std::string text;
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      for (Eigen::Index j = 0; j < m.cols(); ++j) text += number(m(i, j)) + (j + 1 < m.cols() ? "," : "\n");
    return text;
  };
  for (const NetworkTask& task : grid.networks) {
    if (config.keep_matrices == KeepMatrices::first_seed && task.seed != first_seed) continue;
    PhaseTimes unused;
    std::vector<KeptMatrix> kept;
    run_cpu_network(task, grid, unused, &kept);
    for (const KeptMatrix& m : kept) {
      const std::string stem = fmt::format("net{}_k{}", task.index, m.observed);
      const std::string truth = stem + "_true.csv";
      const std::string label = grid.estimators[static_cast<size_t>(m.estimator_index)].label;
      const std::string estimate = fmt::format("{}_{}.csv", stem, label);
      if (m.estimator_index == 0) files.emplace_back("matrices/" + truth, matrix_csv(m.truth));
      files.emplace_back("matrices/" + estimate, matrix_csv(m.estimate));
      fmt::format_to(std::back_inserter(index), "{},{},{},{},{},{}\n", task.index, task.seed, m.observed, label, truth,
                     estimate);
    }
  }
  files.emplace_back("matrices/index.csv", std::move(index));
  return files;
}

void write_run_directory(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& files) {
  check_output_directory(dir);
  const fs::path target = fs::absolute(dir);
  const fs::path staging =
      target.parent_path() / fmt::format(".{}.partial-{}", target.filename().string(), static_cast<long>(::getpid()));
  std::error_code ec;
  fs::remove_all(staging, ec);
  if (!fs::create_directory(staging, ec))
    throw InputError(fmt::format("cannot create '{}': {}", staging.string(), ec.message()));
  try {
    for (const auto& [name, content] : files) write_file_durably(staging / name, content);
    sync_directory(staging);
    // RENAME_NOREPLACE: fails instead of replacing a directory that appeared meanwhile.
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0)
      throw InputError(fmt::format("cannot move results into '{}': {}", target.string(), std::strerror(errno)));
    sync_directory(target.parent_path());
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

}  // namespace causalsweep
