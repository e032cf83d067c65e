#pragma once
// The results journal of a resumable run: a JSON header naming what is being computed, then one
// record per completed batch (magic, size, FNV-1a checksum, payload), each written in one write()
// and fsynced before the next batch starts. A crash can only damage the record being appended;
// such a torn tail is detected and dropped on open, so a network is never recorded twice or in part.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "causalsweep/results.hpp"

namespace causalsweep {

struct JournalContents {
  nlohmann::json header;
  std::vector<NetworkResult> results;  // in the order they were recorded
  PhaseTimes times;                    // summed over the records
  uint64_t records = 0;
  uint64_t valid_bytes = 0;            // where the intact records end
  uint64_t torn_bytes = 0;             // bytes after them left by an interrupted append
};

// Reads a journal without changing it. InputError for a missing or corrupted header, or damage
// anywhere but the tail (which is reported in torn_bytes instead).
JournalContents read_journal(const std::filesystem::path& path);

// The header fields that must match for a journal to be resumed or merged (besides the caller's).
nlohmann::json journal_format();

class Journal {
 public:
  // Opens the journal at `path` for appending, creating it with `header` when absent. Takes an
  // exclusive lock (another process running the same shard: InputError), checks that every key of
  // `header` matches the stored one (InputError naming the key), and truncates a torn tail.
  Journal(const std::filesystem::path& path, const nlohmann::json& header);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const JournalContents& contents() const { return contents_; }

  // Appends one record durably; on failure (disk full, file too large) truncates what it wrote and
  // throws InputError saying that everything recorded before is safe.
  void append(const std::vector<NetworkResult>& results, const PhaseTimes& times);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  JournalContents contents_;
};

}  // namespace causalsweep
