#include "merge.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "causalsweep/build_info.hpp"
#include "causalsweep/config.hpp"
#include "journal.hpp"
#include "orchestrator.hpp"
#include "output.hpp"
#include "shard.hpp"

namespace causalsweep {
namespace fs = std::filesystem;
namespace {

struct Sweep {
  nlohmann::json identity;
  SweepConfig config;
  SweepGrid grid;
  std::vector<std::vector<uint64_t>> assignment;
};

Sweep open_sweep(const fs::path& dir) {
  Sweep s;
  s.identity = read_sweep_identity(dir);
  for (const char* key : {"version", "git_commit"}) {
    const std::string mine = key == std::string("version") ? build_info::version : build_info::git_commit;
    if (s.identity.value(key, "") != mine)
      throw InputError(fmt::format("'{}' was computed by causalsweep {} {}, this is {} {}: results of different "
                                   "versions are never merged; merge with the binary that ran the shards",
                                   dir.string(), key, s.identity.value(key, "?"), key, mine));
  }
  s.config = parse_config(s.identity.value("config_text", ""), s.identity.value("config_source_name", "<sweep.json>"));
  if (config_hash(s.config) != s.identity.value("config_hash", ""))
    throw InputError(fmt::format("'{}': the config it stores no longer hashes to its config_hash; the file was "
                                 "edited or is corrupted",
                                 (dir / "sweep.json").string()));
  s.grid = expand_grid(s.config);
  s.assignment = assign_shards(s.grid, s.identity.value("shards", 1));
  return s;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str(), nullptr, false);
}

// Every shard's results, checked against the sweep; statuses report what is missing.
std::vector<ShardStatus> scan(const fs::path& dir, const Sweep& sweep, std::vector<JournalContents>* contents) {
  const int count = sweep.identity.value("shards", 1);
  std::set<std::string> expected;
  for (int i = 0; i < count; ++i) expected.insert(shard_directory_name({i, count}));
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) == 0 && !expected.count(name))
      throw InputError(fmt::format("'{}' is not a shard of this sweep ({} shards, config hash {}); shard directories "
                                   "of other sweeps never mix: move it out of '{}'",
                                   entry.path().string(), count, sweep.identity.value("config_hash", ""), dir.string()));
  }
  std::vector<ShardStatus> statuses;
  for (int i = 0; i < count; ++i) {
    const auto& assigned = sweep.assignment[static_cast<size_t>(i)];
    ShardStatus st{i, assigned.size(), 0, false};
    const fs::path journal = dir / shard_directory_name({i, count}) / "journal";
    if (fs::exists(journal)) {
      st.exists = true;
      JournalContents c = read_journal(journal);
      const nlohmann::json want = {{"version", build_info::version},
                                   {"git_commit", build_info::git_commit},
                                   {"config_hash", sweep.identity["config_hash"]},
                                   {"shard_index", i},
                                   {"shard_count", count},
                                   {"assignment_hash", assignment_hash(assigned)}};
      for (const auto& [key, value] : want.items())
        if (c.header.value(key, nlohmann::json()) != value)
          throw InputError(fmt::format("shard directory '{}' holds results of another sweep or version: its journal "
                                       "has {} = {}, the sweep has {}; move it aside and rerun the shard",
                                       journal.parent_path().string(), key,
                                       c.header.value(key, nlohmann::json()).dump(), value.dump()));
      std::set<uint64_t> seen;
      for (const NetworkResult& r : c.results)
        if (!std::binary_search(assigned.begin(), assigned.end(), r.network_index) || !seen.insert(r.network_index).second)
          throw InputError(fmt::format("journal '{}' records network {} twice or outside its shard; it is corrupted: "
                                       "move the shard directory aside and rerun the shard",
                                       journal.string(), r.network_index));
      st.done = seen.size();
      if (contents) contents->push_back(std::move(c));
    }
    statuses.push_back(st);
  }
  return statuses;
}

}  // namespace

std::vector<ShardStatus> shard_statuses(const fs::path& dir) {
  const Sweep sweep = open_sweep(dir);
  return scan(dir, sweep, nullptr);
}

bool merge_sweep(const fs::path& dir_in, const std::string& command, bool quiet) {
  const fs::path dir = fs::absolute(dir_in).lexically_normal();
  const Sweep sweep = open_sweep(dir);
  if (fs::exists(dir / "manifest.json")) return false;
  std::vector<JournalContents> contents;
  const std::vector<ShardStatus> statuses = scan(dir, sweep, &contents);
  std::vector<int> incomplete;
  std::string details;
  for (const ShardStatus& st : statuses)
    if (st.done < st.assigned) {
      incomplete.push_back(st.index);
      details += fmt::format("\n  shard {}: {}", st.index,
                             st.exists ? fmt::format("{} of {} networks done", st.done, st.assigned)
                                       : std::string("never started (no journal)"));
    }
  if (!incomplete.empty()) {
    std::string rerun;
    const fs::path script = dir / "slurm" / "array.sbatch";
    if (fs::exists(script))
      rerun += fmt::format("\nrerun them on SLURM:\n  sbatch --array={} {}", fmt::join(incomplete, ","),
                           shell_quote(script.string()));
    rerun += "\nor here, one after the other:";
    for (int i : incomplete) rerun += "\n  " + shard_command(sweep.identity, dir, i);
    throw InputError(fmt::format("cannot merge '{}': {} of {} shard(s) are not complete:{}{}\nthen merge again:\n  {} "
                                 "merge {}",
                                 dir.string(), incomplete.size(), statuses.size(), details, rerun,
                                 shell_quote(self_executable()), shell_quote(dir.string())));
  }

  SweepOutcome outcome;
  nlohmann::json shards = nlohmann::json::array();
  std::string started, finished;
  std::set<std::string> backends;
  nlohmann::json first_backend;
  for (size_t i = 0; i < contents.size(); ++i) {
    for (NetworkResult& r : contents[i].results) outcome.results.push_back(std::move(r));
    outcome.times += contents[i].times;
    const nlohmann::json m = read_json(dir / shard_directory_name({static_cast<int>(i), static_cast<int>(contents.size())}) /
                                       "manifest.json");
    if (!m.is_object()) continue;  // complete journal, manifest lost: provenance only
    const std::string s = m.value("started_utc", ""), f = m.value("finished_utc", "");
    if (!s.empty() && (started.empty() || s < started)) started = s;
    if (f > finished) finished = f;
    outcome.wall_seconds += m.value("/seconds/wall"_json_pointer, 0.0);
    const nlohmann::json backend = m.value("backend", nlohmann::json::object());
    backends.insert(backend.value("name", "?"));
    if (first_backend.is_null()) first_backend = backend;
    shards.push_back({{"index", i},
                      {"host", m.value("host", nlohmann::json::object())},
                      {"backend", backend},
                      {"started_utc", s},
                      {"finished_utc", f},
                      {"wall_seconds", m.value("/seconds/wall"_json_pointer, 0.0)}});
  }
  std::sort(outcome.results.begin(), outcome.results.end(),
            [](const auto& a, const auto& b) { return a.network_index < b.network_index; });
  outcome.started_utc = started;
  outcome.finished_utc = finished;
  const SweepPlan plan = plan_sweep(sweep.config, sweep.grid, 1);
  ManifestProvenance provenance{backends.size() == 1 ? *backends.begin() : "mixed",
                                first_backend.is_object() ? first_backend.value("device", "") : "",
                                fmt::format("merged from {} shard(s)", contents.size()), command,
                                first_backend.is_object() ? first_backend.value("threads", 0) : 0,
                                first_backend.is_object() ? first_backend.value("batch_size", 0) : 0, 0};
  const auto files = run_directory_files(sweep.config, sweep.grid, plan, outcome, provenance,
                                         {{"shards", shards}, {"merged_utc", utc_now()}});
  // manifest.json last: its presence says that the merged files are complete.
  for (const auto& [name, content] : files) write_file_atomically(dir / name, content);
  if (!quiet)
    fmt::print("merged {} shard(s), {} networks, into {}/ (runs.csv, curves.csv, manifest.json)\n", contents.size(),
               outcome.results.size(), dir.string());
  return true;
}

}  // namespace causalsweep
