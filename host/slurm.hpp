#pragma once
// `causalsweep submit --slurm`: an sbatch job array (task i runs shard i) and a merge job that
// depends on it (afterok). SLURM schedules, retries and requeues; causalsweep only writes scripts.
#include <cstdint>
#include <filesystem>
#include <string>

#include "causalsweep/config.hpp"

namespace causalsweep {

struct SlurmJob {
  std::string name;                  // the sweep's name
  std::string config_hash;
  std::string binary;                // absolute path of causalsweep (shared file system)
  std::string config_path;           // absolute; empty for the embedded default
  std::filesystem::path output_dir;  // absolute sweep directory
  uint64_t networks = 0;
  int tasks = 1;
  SlurmOptions options;
};

// Tasks for a sweep of `cost` multiply-adds: about half an hour of nominal work per task with
// `cpus` threads, at least 1, at most one per network and at most 1000 (common MaxArraySize).
int default_task_count(double cost, uint64_t networks, int cpus);

std::string array_script(const SlurmJob& job);
std::string merge_script(const SlurmJob& job);

}  // namespace causalsweep
