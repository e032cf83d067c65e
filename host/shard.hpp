#pragma once
// Sharding: the grid split into N disjoint slices balanced by estimated cost, the identity of a
// sweep (config hash, version) and the on-disk layout of a sharded sweep directory.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "causalsweep/config.hpp"
#include "causalsweep/grid.hpp"

namespace causalsweep {

struct ShardSpec {
  int index = 0;  // 0-based
  int count = 1;
};

// "I/N" with 0 <= I < N; InputError naming the flag otherwise.
ShardSpec parse_shard(const std::string& text);

// The shard of a SLURM array task: (SLURM_ARRAY_TASK_ID - _MIN) / _STEP of SLURM_ARRAY_TASK_COUNT.
// nullopt outside an array job; InputError for an array whose task ids are not a regular range.
std::optional<ShardSpec> shard_from_slurm_environment();

// Network indices of every shard, each list in grid order. Greedy longest-processing-time on
// network_cost, ties broken by index, so the same grid and N always give the same slices.
std::vector<std::vector<uint64_t>> assign_shards(const SweepGrid& grid, int count);

// FNV-1a 64 of bytes, as 16 hex digits: identifies configs and assignments (not a security hash).
std::string fnv1a_hex(std::string_view bytes);
uint64_t fnv1a(std::string_view bytes, uint64_t hash = 0xcbf29ce484222325ull);

// Hash of the resolved config without what cannot change results (the [run] and [slurm] tables,
// the file name it came from): shards of one sweep must agree on it.
std::string config_hash(const SweepConfig& config);

std::string assignment_hash(const std::vector<uint64_t>& indices);

// "shard-03-of-12": zero-padded so that listings sort by index.
std::string shard_directory_name(const ShardSpec& shard);

// The sweep directory's identity file (sweep.json): config, hash, shard count and version. The first
// shard (or `submit`) creates it; every later shard and `merge` check that they belong to it.
nlohmann::json sweep_identity(const SweepConfig& config, const std::string& config_path, int shard_count);
void claim_sweep_directory(const std::filesystem::path& dir, const nlohmann::json& identity);
nlohmann::json read_sweep_identity(const std::filesystem::path& dir);

std::string shell_quote(const std::string& s);
std::string self_executable();  // absolute path of this binary

// The exact command that runs one shard of the sweep described by `identity`.
std::string shard_command(const nlohmann::json& identity, const std::filesystem::path& dir, int index);

// SIGTERM and SIGINT: exit at once with 75 (EX_TEMPFAIL: interrupted, resumable; SIGINT 130)
// unless inside a critical section (a journal append, publishing outputs), which then finishes
// first. Durable state is consistent between any two instructions, so abandoning the batch in
// flight loses at most that batch. Also ignores SIGXFSZ so a file-size limit is an error, not a kill.
void install_interrupt_handlers(const char* resume_hint);
void set_resume_hint(const char* resume_hint);  // must outlive the process
class CriticalSection {
 public:
  // completes_work: the section finishes the job (publishing outputs), so a signal during it is moot.
  explicit CriticalSection(bool completes_work = false);
  ~CriticalSection();
  CriticalSection(const CriticalSection&) = delete;
  CriticalSection& operator=(const CriticalSection&) = delete;

 private:
  bool completes_work_;
};
inline constexpr int exit_interrupted = 75;

}  // namespace causalsweep
