#pragma once
// The run directory: runs.csv (tidy, one row per run, estimator and score), curves.csv and
// manifest.json, written into a hidden sibling directory and renamed into place in one step, so a
// reader never sees a half-written result and an existing directory is never replaced.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "causalsweep/config.hpp"
#include "orchestrator.hpp"

namespace causalsweep {

// InputError unless `dir` does not exist yet and its parent can be created and written.
void check_output_directory(const std::filesystem::path& dir);

std::string runs_csv(const SweepGrid& grid, const SweepOutcome& outcome);

// Who computed a result: backend and threads, for the manifest (provenance, not results).
struct ManifestProvenance {
  std::string backend_name, device, choice, command;
  int threads = 0, batch_size = 0;
  double format_seconds = 0;
};

// manifest.json of a run directory. Everything but `command`, `config.run`, `backend`, `host`,
// `started_utc`, `finished_utc`, `seconds` and `shards` depends only on the config and the results.
nlohmann::json make_manifest(const SweepConfig& config, const SweepGrid& grid, const SweepPlan& plan,
                             const SweepOutcome& outcome, const ManifestProvenance& provenance);
std::string curves_csv(const SweepGrid& grid, const SweepOutcome& outcome);

// Reduces the curves of `outcome` (results in grid order) and formats the three files of a run
// directory: runs.csv, curves.csv, manifest.json.
std::vector<std::pair<std::string, std::string>> run_directory_files(const SweepConfig& config, const SweepGrid& grid,
                                                                     const SweepPlan& plan, SweepOutcome& outcome,
                                                                     ManifestProvenance provenance,
                                                                     const nlohmann::json& manifest_extra = {});

// Writes named files (name, content) into `dir` atomically: all of them appear at once or none.
void write_run_directory(const std::filesystem::path& dir,
                         const std::vector<std::pair<std::string, std::string>>& files);

// fsync of a directory, so that renames and new entries in it survive a crash.
void sync_directory(const std::filesystem::path& dir);

// Writes `content` to a temporary file beside `path`, syncs it and renames it over `path`.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

// matrices/: true and estimated matrices of the runs config.keep_matrices selects, and their index.
std::vector<std::pair<std::string, std::string>> kept_matrix_files(const SweepConfig& config, const SweepGrid& grid);

// Writes one file durably (written, flushed, synced) at `path`; InputError on failure.
void write_file_durably(const std::filesystem::path& path, const std::string& content);

}  // namespace causalsweep
