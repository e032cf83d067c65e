#include "journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>

#include "causalsweep/config.hpp"
#include "output.hpp"
#include "shard.hpp"

namespace causalsweep {
namespace fs = std::filesystem;
namespace {

// PhaseTimes is stored as its bytes (the header records its size); RunResult field by field.
static_assert(std::is_trivially_copyable_v<PhaseTimes> && std::is_trivially_copyable_v<RocPoint>);

constexpr char file_magic[16] = {'c', 'a', 'u', 's', 'a', 'l', 's', 'w', 'e', 'e', 'p', '-', 'j', 'r', 'n', '1'};
constexpr uint32_t record_magic = 0x31525343;  // "CSR1"
constexpr size_t record_head = 16;             // magic, payload size, checksum
constexpr size_t file_head = 32;               // file magic, header size, reserved, checksum

template <typename T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T get(std::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

std::string encode_payload(const std::vector<NetworkResult>& results, const PhaseTimes& times) {
  std::string out;
  put(out, static_cast<uint32_t>(results.size()));
  put(out, times);
  for (const NetworkResult& r : results) {
    put(out, r.network_index);
    put(out, r.network_flags);
    put(out, r.saturated_logits);
    put(out, static_cast<uint32_t>(r.runs.size()));
    for (const RunResult& run : r.runs) {
      // Seven names: a new RunResult field stops the build here until it is stored too.
      const auto& [ratio_index, observed, estimator_index, score, scored, flags, roc] = run;
      put(out, ratio_index);
      put(out, observed);
      put(out, estimator_index);
      put(out, score);
      put(out, scored);
      put(out, flags);
      put(out, static_cast<uint32_t>(roc.size()));
      out.append(reinterpret_cast<const char*>(roc.data()), roc.size() * sizeof(RocPoint));
    }
  }
  return out;
}

constexpr size_t run_fixed_bytes = 3 * sizeof(int) + sizeof(RunResult::score) + 3 * sizeof(uint32_t);

// Reads one run at `at`, advancing it; false when the bytes run out.
bool decode_run(std::string_view p, size_t& at, RunResult& run) {
  if (p.size() - at < run_fixed_bytes) return false;
  auto& [ratio_index, observed, estimator_index, score, scored, flags, roc] = run;
  ratio_index = get<int>(p, at);
  observed = get<int>(p, at + 4);
  estimator_index = get<int>(p, at + 8);
  std::memcpy(&score, p.data() + at + 12, sizeof score);
  at += 12 + sizeof score;
  scored = get<uint32_t>(p, at);
  flags = get<uint32_t>(p, at + 4);
  const auto points = get<uint32_t>(p, at + 8);
  at += 12;
  if ((p.size() - at) / sizeof(RocPoint) < points) return false;
  roc.resize(points);
  std::memcpy(roc.data(), p.data() + at, points * sizeof(RocPoint));
  at += points * sizeof(RocPoint);
  return true;
}

// False when the payload does not parse (cannot happen for a record whose checksum matched,
// unless the layout check was bypassed).
bool decode_payload(std::string_view p, JournalContents& into) {
  if (p.size() < 4 + sizeof(PhaseTimes)) return false;
  const auto count = get<uint32_t>(p, 0);
  into.times += get<PhaseTimes>(p, 4);
  size_t at = 4 + sizeof(PhaseTimes);
  constexpr size_t network_head = 8 + 4 + 8 + 4;
  for (uint32_t i = 0; i < count; ++i) {
    if (p.size() - at < network_head) return false;
    NetworkResult r;
    r.network_index = get<uint64_t>(p, at);
    r.network_flags = get<uint32_t>(p, at + 8);
    r.saturated_logits = get<int64_t>(p, at + 12);
    const auto runs = get<uint32_t>(p, at + 20);
    at += network_head;
    if ((p.size() - at) / run_fixed_bytes < runs) return false;
    r.runs.resize(runs);
    for (RunResult& run : r.runs)
      if (!decode_run(p, at, run)) return false;
    into.results.push_back(std::move(r));
  }
  return at == p.size();
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read journal '{}': {}", path.string(), std::strerror(errno)));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

InputError corrupted(const fs::path& path, uint64_t offset, std::string_view what) {
  return InputError(fmt::format(
      "journal '{}' is corrupted at byte {}: {}. It was not written this way by causalsweep (an interrupted "
      "write only damages the end, which is dropped); nothing was changed. Move the shard's directory aside and "
      "rerun it to recompute its results",
      path.string(), offset, what));
}

JournalContents parse(const fs::path& path, std::string_view bytes) {
  JournalContents c;
  if (bytes.size() < file_head || std::memcmp(bytes.data(), file_magic, sizeof file_magic) != 0)
    throw corrupted(path, 0, "it does not start with a causalsweep journal header");
  const auto header_size = get<uint32_t>(bytes, 16);
  const auto checksum = get<uint64_t>(bytes, 24);
  if (bytes.size() - file_head < header_size ||
      fnv1a(bytes.substr(file_head, header_size)) != checksum)
    throw corrupted(path, file_head, "the header's checksum does not match");
  c.header = nlohmann::json::parse(bytes.substr(file_head, header_size), nullptr, false);
  if (c.header.is_discarded() || !c.header.is_object()) throw corrupted(path, file_head, "the header is not JSON");
  if (c.header.value("journal", nlohmann::json()) != journal_format()["journal"] ||
      c.header.value("run_result_bytes", 0) != run_fixed_bytes || c.header.value("score_count", 0) != score_count ||
      c.header.value("phase_times_bytes", 0) != sizeof(PhaseTimes))
    throw InputError(fmt::format("journal '{}' was written by a build of causalsweep with another result layout ({}); "
                                 "rerun with the binary that wrote it (version {}, commit {})",
                                 path.string(), c.header.dump(), c.header.value("version", "?"),
                                 c.header.value("git_commit", "?")));
  size_t at = file_head + header_size;
  while (at < bytes.size()) {
    const size_t left = bytes.size() - at;
    const bool all_zero = bytes.find_first_not_of('\0', at) == std::string_view::npos;
    if (left < record_head || all_zero) break;  // torn: the append never finished (or left zero fill)
    const auto magic = get<uint32_t>(bytes, at);
    const auto size = get<uint32_t>(bytes, at + 4);
    const auto sum = get<uint64_t>(bytes, at + 8);
    if (magic != record_magic) throw corrupted(path, at, "a record does not start with the record marker");
    if (left - record_head < size) break;  // torn: the payload was cut short
    const std::string_view payload = bytes.substr(at + record_head, size);
    if (fnv1a(payload) != sum) {
      if (at + record_head + size == bytes.size()) break;  // torn: the last record's data never fully landed
      throw corrupted(path, at, "a record's checksum does not match");
    }
    if (!decode_payload(payload, c)) throw corrupted(path, at, "a record's content does not parse");
    ++c.records;
    at += record_head + size;
  }
  c.valid_bytes = at;
  c.torn_bytes = bytes.size() - at;
  return c;
}

}  // namespace

nlohmann::json journal_format() {
  return {{"journal", 1}, {"run_result_bytes", run_fixed_bytes}, {"phase_times_bytes", sizeof(PhaseTimes)},
          {"score_count", score_count}};
}

JournalContents read_journal(const fs::path& path) { return parse(path, read_all(path)); }

Journal::Journal(const fs::path& path, const nlohmann::json& header) : path_(path) {
  nlohmann::json full = header;
  full.update(journal_format());
  if (!fs::exists(path)) {
    // Created aside and linked into place, so the header is never torn and two processes
    // starting the same shard at once cannot both create it.
    const std::string text = full.dump();
    std::string head(file_magic, sizeof file_magic);
    put(head, static_cast<uint32_t>(text.size()));
    put(head, uint32_t{0});
    put(head, fnv1a(text));
    const fs::path temp = path.parent_path() / fmt::format(".journal.{}", static_cast<long>(::getpid()));
    write_file_durably(temp, head + text);
    const int linked = ::link(temp.c_str(), path.c_str());
    const int error = errno;
    std::error_code ec;
    fs::remove(temp, ec);
    if (linked != 0 && error != EEXIST)
      throw InputError(fmt::format("cannot create journal '{}': {}", path.string(), std::strerror(error)));
    sync_directory(path.parent_path());
  }
  fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) throw InputError(fmt::format("cannot open journal '{}': {}", path.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0)
    throw InputError(fmt::format("journal '{}' is in use by another causalsweep process (the same shard is running "
                                 "twice?); wait for it or stop it",
                                 path.string()));
  contents_ = read_journal(path);
  // The most telling difference first: version, then config, then the shard.
  std::vector<std::string> keys{"version", "git_commit", "config_hash", "shard_count", "shard_index"};
  for (const auto& item : full.items()) keys.push_back(item.key());
  for (const std::string& key : keys)
    if (const nlohmann::json& value = full.value(key, nlohmann::json()); contents_.header.value(key, nlohmann::json()) != value)
      throw InputError(fmt::format(
          "'{}' holds results of another sweep or shard: its journal has {} = {}, this run has {}; results of "
          "different configs, shards or versions never mix: use another output directory, or rerun with the "
          "config and binary that started it",
          path.parent_path().string(), key, contents_.header.value(key, nlohmann::json()).dump(), value.dump()));
  if (contents_.torn_bytes > 0) {
    // Drop what an interrupted append left; everything before it is intact and stays.
    if (::ftruncate(fd_, static_cast<off_t>(contents_.valid_bytes)) != 0 || ::fsync(fd_) != 0)
      throw InputError(fmt::format("cannot repair journal '{}': {}", path.string(), std::strerror(errno)));
    contents_.torn_bytes = 0;
  }
  size_ = contents_.valid_bytes;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const std::vector<NetworkResult>& results, const PhaseTimes& times) {
  const std::string payload = encode_payload(results, times);
  std::string record;
  record.reserve(record_head + payload.size());
  put(record, record_magic);
  put(record, static_cast<uint32_t>(payload.size()));
  put(record, fnv1a(payload));
  record += payload;
  CriticalSection no_interrupt;  // a signal now waits until the record is on disk
  size_t written = 0;
  int error = 0;
  while (written < record.size()) {
    const ssize_t n = ::pwrite(fd_, record.data() + written, record.size() - written, static_cast<off_t>(size_ + written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : ENOSPC;
      break;
    }
    written += static_cast<size_t>(n);
  }
  if (error == 0 && ::fdatasync(fd_) != 0) error = errno;
  if (error != 0) {
    [[maybe_unused]] const int ignored = ::ftruncate(fd_, static_cast<off_t>(size_));
    throw InputError(fmt::format("cannot append to journal '{}': {}; the {} network(s) recorded before are safe: "
                                 "free space (or raise the limit) and rerun the same command to resume",
                                 path_.string(), std::strerror(error), contents_.results.size()));
  }
  size_ += record.size();
  for (const NetworkResult& r : results) contents_.results.push_back(r);
  contents_.times += times;
  ++contents_.records;
}

}  // namespace causalsweep
