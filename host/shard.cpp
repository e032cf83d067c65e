#include "shard.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>

#include <fmt/format.h>

#include "causalsweep/build_info.hpp"
#include "output.hpp"

namespace causalsweep {
namespace fs = std::filesystem;

ShardSpec parse_shard(const std::string& text) {
  const auto bad = [&](std::string_view why) {
    return InputError(fmt::format("--shard '{}': {}; expected I/N with 0 <= I < N (e.g. --shard 2/8)", text, why));
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos) throw bad("no '/'");
  const auto number = [&](std::string_view part, const char* what) {
    if (part.empty() || part.size() > 9 || !std::all_of(part.begin(), part.end(), ::isdigit))
      throw bad(fmt::format("{} '{}' is not a non-negative integer", what, part));
    return std::stoi(std::string(part));
  };
  ShardSpec s{number(std::string_view(text).substr(0, slash), "I"), number(std::string_view(text).substr(slash + 1), "N")};
  if (s.count < 1) throw bad("N must be at least 1");
  if (s.index >= s.count) throw bad(fmt::format("index {} is out of range for {} shard(s)", s.index, s.count));
  return s;
}

std::optional<ShardSpec> shard_from_slurm_environment() {
  const auto get = [](const char* name) -> std::optional<long> {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (*end != '\0') throw InputError(fmt::format("environment variable {}='{}' is not an integer", name, v));
    return x;
  };
  const auto id = get("SLURM_ARRAY_TASK_ID"), count = get("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return std::nullopt;
  const long min = get("SLURM_ARRAY_TASK_MIN").value_or(0), step = get("SLURM_ARRAY_TASK_STEP").value_or(1);
  const auto max = get("SLURM_ARRAY_TASK_MAX");
  // Irregular arrays (--array=1,4,9) have no index formula: the user must say which shard.
  if (step < 1 || *id < min || (*id - min) % step != 0 || (*id - min) / step >= *count ||
      (max && (*max - min) / step + 1 != *count))
    throw InputError(fmt::format(
        "SLURM array task {} (min {}, step {}, count {}) is not part of a regular range 'MIN-MAX:STEP'; pass --shard "
        "I/N explicitly",
        *id, min, step, *count));
  return ShardSpec{static_cast<int>((*id - min) / step), static_cast<int>(*count)};
}

std::vector<std::vector<uint64_t>> assign_shards(const SweepGrid& grid, int count) {
  std::vector<std::pair<double, uint64_t>> by_cost;
  by_cost.reserve(grid.networks.size());
  for (const NetworkTask& t : grid.networks)
    by_cost.emplace_back(network_cost(t, grid), t.index);
  std::stable_sort(by_cost.begin(), by_cost.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  // Min-heap of (load, shard): the next most expensive network goes to the least loaded shard.
  using Load = std::pair<double, int>;
  std::priority_queue<Load, std::vector<Load>, std::greater<>> loads;
  for (int s = 0; s < count; ++s) loads.emplace(0.0, s);
  std::vector<std::vector<uint64_t>> shards(static_cast<size_t>(count));
  for (const auto& [cost, index] : by_cost) {
    auto [load, s] = loads.top();
    loads.pop();
    shards[static_cast<size_t>(s)].push_back(index);
    loads.emplace(load + cost, s);
  }
  for (auto& s : shards) std::sort(s.begin(), s.end());
  return shards;
}

uint64_t fnv1a(std::string_view bytes, uint64_t hash) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string fnv1a_hex(std::string_view bytes) { return fmt::format("{:016x}", fnv1a(bytes)); }

std::string config_hash(const SweepConfig& config) {
  nlohmann::json resolved = to_json(config);
  resolved.erase("run");
  resolved.erase("slurm");
  resolved.erase("source_name");
  return fnv1a_hex(resolved.dump());
}

std::string assignment_hash(const std::vector<uint64_t>& indices) {
  return fnv1a_hex(std::string_view(reinterpret_cast<const char*>(indices.data()), indices.size() * sizeof(uint64_t)));
}

std::string shard_directory_name(const ShardSpec& shard) {
  const int width = static_cast<int>(std::to_string(shard.count).size());
  return fmt::format("shard-{:0{}}-of-{}", shard.index, width, shard.count);
}

nlohmann::json sweep_identity(const SweepConfig& config, const std::string& config_path, int shard_count) {
  return {{"tool", "causalsweep"},
          {"version", build_info::version},
          {"git_commit", build_info::git_commit},
          {"name", config.name},
          {"config_hash", config_hash(config)},
          {"config_path", config_path},  // "" for the embedded default
          {"config_source_name", config.source_name},
          {"config_text", config.source_text},
          {"shards", shard_count}};
}

nlohmann::json read_sweep_identity(const fs::path& dir) {
  const fs::path file = dir / "sweep.json";
  std::ifstream in(file);
  if (!in)
    throw InputError(fmt::format("'{}' is not a sharded sweep directory: it has no sweep.json (written by the first "
                                 "`run --shard` or by `submit`)",
                                 dir.string()));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json identity = nlohmann::json::parse(text.str(), nullptr, false);
  if (identity.is_discarded() || !identity.is_object() || !identity.contains("config_hash") ||
      !identity.contains("shards") || !identity["shards"].is_number_integer())
    throw InputError(fmt::format("'{}' is corrupted (not the JSON causalsweep writes); it identifies the sweep in "
                                 "'{}': restore it or rerun the shards into a new directory",
                                 file.string(), dir.string()));
  return identity;
}

void claim_sweep_directory(const fs::path& dir, const nlohmann::json& identity) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::access(dir.c_str(), W_OK) != 0)
    throw InputError(fmt::format("sweep directory '{}': cannot create or write it: {}", dir.string(),
                                 ec ? ec.message() : std::strerror(errno)));
  const fs::path file = dir / "sweep.json";
  if (!fs::exists(file)) {
    if (fs::exists(dir / "manifest.json"))
      throw InputError(fmt::format("'{}' holds the result of an unsharded run (manifest.json, no sweep.json); "
                                   "shards need a directory of their own: choose another -o DIR",
                                   dir.string()));
    // Written aside and linked into place: of several shards starting at once exactly one creates it.
    const fs::path temp = dir / fmt::format(".sweep.json.{}", static_cast<long>(::getpid()));
    write_file_durably(temp, identity.dump(2) + "\n");
    const int linked = ::link(temp.c_str(), file.c_str());
    const int error = errno;
    fs::remove(temp, ec);
    if (linked != 0 && error != EEXIST)
      throw InputError(fmt::format("cannot create '{}': {}", file.string(), std::strerror(error)));
    sync_directory(dir);
  }
  const nlohmann::json existing = read_sweep_identity(dir);
  for (const char* key : {"config_hash", "shards", "version", "git_commit"})
    if (existing.value(key, nlohmann::json()) != identity[key])
      throw InputError(fmt::format(
          "'{}' belongs to another sweep: its sweep.json has {} {} (config '{}', {} shards), this run has {} "
          "(config '{}', {} shards); shards of different configs, shard counts or versions never mix: choose "
          "another -o DIR",
          dir.string(), key, existing.value(key, nlohmann::json()).dump(), existing.value("config_source_name", "?"),
          existing.value("shards", 0), identity[key].dump(), identity.value("config_source_name", "?"),
          identity.value("shards", 0)));
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string self_executable() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("causalsweep") : self.string();
}

std::string shard_command(const nlohmann::json& identity, const fs::path& dir, int index) {
  const std::string config = identity.value("config_path", "");
  return fmt::format("{} run {}--shard {}/{} -o {}", shell_quote(self_executable()),
                     config.empty() ? "" : shell_quote(config) + " ", index, identity.value("shards", 1),
                     shell_quote(fs::absolute(dir).lexically_normal().string()));
}

namespace {

std::atomic<int> in_critical{0};
std::atomic<int> pending_signal{0};
std::atomic<const char*> hint{""};

[[noreturn]] void exit_for(int signo) {
  const char* head = "\ncausalsweep: interrupted by a signal; every completed batch is saved. ";
  [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, head, std::strlen(head));
  const char* text = hint.load();
  w = ::write(STDERR_FILENO, text, std::strlen(text));
  w = ::write(STDERR_FILENO, "\n", 1);
  ::_exit(signo == SIGINT ? 130 : exit_interrupted);
}

void on_signal(int signo) {
  pending_signal.store(signo);
  if (in_critical.load() == 0) exit_for(signo);
}

}  // namespace

void set_resume_hint(const char* resume_hint) { hint.store(resume_hint); }

void install_interrupt_handlers(const char* resume_hint) {
  hint.store(resume_hint);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::signal(SIGXFSZ, SIG_IGN);
}

CriticalSection::CriticalSection(bool completes_work) : completes_work_(completes_work) { in_critical.fetch_add(1); }

CriticalSection::~CriticalSection() {
  if (completes_work_) pending_signal.store(0);
  if (in_critical.fetch_sub(1) == 1 && pending_signal.load() != 0) exit_for(pending_signal.load());
}

}  // namespace causalsweep
