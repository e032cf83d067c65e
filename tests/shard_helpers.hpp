#pragma once
// Running the causalsweep binary from tests: commands with exit code and output, child processes
// to kill, and comparisons of run directories.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace causalsweep::testing {
namespace fs = std::filesystem;

struct CliResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Tests choose their shards: an enclosing SLURM array job (CI inside SLURM) must not choose for them.
inline const bool slurm_array_environment_cleared = [] {
  for (const char* v : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                        "SLURM_ARRAY_TASK_STEP"})
    unsetenv(v);
  return true;
}();

inline fs::path scratch_dir(const char* tag) {
  std::string pattern = (fs::temp_directory_path() / (std::string("causalsweep-") + tag + "-XXXXXX")).string();
  return mkdtemp(pattern.data());
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline CliResult shell(const std::string& command, const fs::path& dir) {
  const fs::path log = dir / "cli.log";
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(log)};
}

inline CliResult cli(const std::string& args, const fs::path& dir) {
  return shell(std::string(CAUSALSWEEP_BINARY) + " " + args, dir);
}

inline fs::path write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

// Starts the binary with `args` (output appended to dir/child.log); returns its pid.
inline pid_t spawn_cli(const std::vector<std::string>& args, const fs::path& dir) {
  std::vector<std::string> argv_s{CAUSALSWEEP_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = (dir / "child.log").string();
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// The manifest without the fields that record who ran it, where and when (README: "Outputs").
inline nlohmann::json manifest_results_part(const fs::path& dir) {
  nlohmann::json m = nlohmann::json::parse(read_file(dir / "manifest.json"));
  for (const char* key : {"command", "backend", "host", "started_utc", "finished_utc", "seconds", "shards", "merged_utc"})
    m.erase(key);
  m["config"].erase("run");
  return m;
}

// runs.csv and curves.csv byte for byte, manifest.json apart from provenance and timing.
inline void expect_same_results(const fs::path& expected, const fs::path& actual) {
  for (const char* file : {"runs.csv", "curves.csv"}) {
    const std::string a = read_file(expected / file), b = read_file(actual / file);
    EXPECT_FALSE(a.empty()) << (expected / file);
    EXPECT_TRUE(a == b) << file << " differs between " << expected << " and " << actual;
  }
  EXPECT_EQ(manifest_results_part(expected), manifest_results_part(actual));
}

}  // namespace causalsweep::testing
