#include "output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "causalsweep/flags.hpp"

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

void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

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
  FILE* file = std::fopen(path.c_str(), "wb");
  bool ok = file != nullptr && std::fwrite(content.data(), 1, content.size(), file) == content.size() &&
            std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  const int error = errno;
  if (file != nullptr) ok = (std::fclose(file) == 0) && ok;
  if (!ok) throw InputError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(error)));
}

std::string runs_csv(const SweepGrid& grid, const SweepOutcome& outcome) {
  std::string csv =
      "network,seed,n_neurons,timesteps,p_connect,eta,perturb,observed_ratio,observed,estimator,method,score,value,"
      "flags\n";
  auto out = std::back_inserter(csv);
  for (const NetworkResult& r : outcome.results) {
    const NetworkTask& t = grid.networks[r.network_index];
    for (const RunResult& run : r.runs) {
      const EstimatorSpec& e = grid.estimators[static_cast<size_t>(run.estimator_index)];
      for (int s = 0; s < score_count; ++s)
        fmt::format_to(out, "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", t.index, t.seed, t.n_neurons, t.timesteps,
                       number(t.p_connect), number(t.eta), t.perturb ? "true" : "false",
                       number(grid.observed_ratios[static_cast<size_t>(run.ratio_index)]), run.observed, e.label,
                       to_string(e.method), score_names[s], number(run.score[s]), flags_to_string(run.flags));
    }
  }
  return csv;
}

std::string curves_csv(const SweepGrid& grid, const SweepOutcome& outcome) {
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
