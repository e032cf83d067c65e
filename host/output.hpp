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
std::string curves_csv(const SweepGrid& grid, const SweepOutcome& outcome);

// Writes named files (name, content) into `dir` atomically: all of them appear at once or none.
void write_run_directory(const std::filesystem::path& dir,
                         const std::vector<std::pair<std::string, std::string>>& files);

// Writes one file durably (written, flushed, synced) at `path`; InputError on failure.
void write_file_durably(const std::filesystem::path& path, const std::string& content);

}  // namespace causalsweep
