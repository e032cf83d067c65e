#pragma once
// `causalsweep merge DIR`: the shards of a sweep directory combined into the runs.csv, curves.csv and
// manifest.json one unsharded run of the same config writes (bit for bit for the CSVs).
#include <filesystem>
#include <string>
#include <vector>

namespace causalsweep {

struct ShardStatus {
  int index = 0;
  uint64_t assigned = 0, done = 0;
  bool exists = false;
};

// The state of every shard of the sweep in `dir`. InputError for a directory that is not a sweep,
// a shard directory of another config or version, or a corrupted journal.
std::vector<ShardStatus> shard_statuses(const std::filesystem::path& dir);

// Merges the shards into dir/runs.csv, dir/curves.csv and (last) dir/manifest.json, each written
// atomically. InputError naming the incomplete shards and the commands that rerun exactly those.
// Returns false (and writes nothing) when dir/manifest.json already exists.
bool merge_sweep(const std::filesystem::path& dir, const std::string& command, bool quiet);

}  // namespace causalsweep
