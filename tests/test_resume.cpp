// Resume and crash safety: runs killed with SIGKILL or SIGTERM at random moments, then rerun,
// end with the outputs of an uninterrupted run; the journal never holds a torn or duplicate
// record; corrupted journals and a full disk exit 2 without losing completed work.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "journal.hpp"
#include "shard_helpers.hpp"

namespace cs = causalsweep;
using namespace cs::testing;

namespace {

// About a second of single-threaded work in 48 networks (batch size 1: one journal record each).
const char* sweep = R"(name = "crash"
[model]
n_neurons = [10, 16]
timesteps = [2000, 4000]
eta = [0.5, 2.0]
observed_ratio = [1.0, 0.5]
[seeds]
count = 6
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
)";

// Every network at most once, and the file ends with an intact record.
void expect_consistent_journal(const fs::path& journal, bool allow_torn_tail) {
  if (!fs::exists(journal)) return;
  const cs::JournalContents c = cs::read_journal(journal);
  std::set<uint64_t> seen;
  for (const auto& r : c.results) EXPECT_TRUE(seen.insert(r.network_index).second) << "network " << r.network_index << " twice";
  if (!allow_torn_tail) EXPECT_EQ(c.torn_bytes, 0u) << journal;
}

// Whether /proc says that `pid` has a handler for SIGTERM (SigCgt bit 15), or is gone.
bool catches_sigterm(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("SigCgt:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1)) & 1;
  return true;
}

struct KillStats {
  int kills = 0, runs = 0;
};

// Bytes in the journal now (0 while it does not exist, or once it is published away).
uintmax_t journal_bytes(const fs::path& journal) {
  std::error_code error;
  const uintmax_t bytes = fs::file_size(journal, error);
  return error ? 0 : bytes;
}

// Starts `args` again and again, sending `signo` after a random delay, until a start finishes on its
// own; checks the journal after every kill. A quarter of the delays run from the start (startup,
// the first batch); the rest from the start's first new journal record, so every such start makes
// progress however long startup takes against the run (without gnuplot a whole reference run is
// 0.18 s, of which 0.075 s is the process starting), and a run that ignored its journal would not
// finish.
void run_until_done(const std::vector<std::string>& args, const fs::path& dir, const fs::path& journal, int signo,
                    double max_delay_s, std::mt19937& random, KillStats& stats, bool unsharded_output_done_check) {
  std::uniform_real_distribution<double> delay(0.0, max_delay_s), coin(0.0, 1.0);
  for (int attempt = 0; attempt < 400; ++attempt) {
    const bool from_start = coin(random) < 0.25;
    const uintmax_t journal_before = journal_bytes(journal);
    const pid_t pid = spawn_cli(args, dir);
    ASSERT_GT(pid, 0);
    ++stats.runs;
    // Until main() has installed its handler SIGTERM kills like SIGKILL (tested above): start the
    // clock once the process catches it.
    if (signo == SIGTERM)
      for (int i = 0; i < 5000 && !catches_sigterm(pid); ++i) std::this_thread::sleep_for(std::chrono::microseconds(200));
    int status = 0;
    bool exited = false;
    // Until a record is added (or the process ends: nothing was left to record), at most 60 s.
    for (int i = 0; !from_start && i < 120000 && journal_bytes(journal) <= journal_before; ++i) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    const auto wait_for = std::chrono::duration<double>(delay(random));
    const auto start = std::chrono::steady_clock::now();
    while (!exited && std::chrono::steady_clock::now() - start < wait_for) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (!exited) {
      kill(pid, signo);
      const auto signalled = std::chrono::steady_clock::now();
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      ++stats.kills;
      if (signo == SIGTERM) {
        // A clean stop: exit 75 (interrupted) or 0 (it had just finished), promptly, no torn record.
        ASSERT_TRUE(WIFEXITED(status)) << "SIGTERM ended the process without its handler\n"
                                       << read_file(dir / "child.log");
        EXPECT_TRUE(WEXITSTATUS(status) == 75 || WEXITSTATUS(status) == 0) << WEXITSTATUS(status);
        EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count(), 5.0);
        expect_consistent_journal(journal, false);
        if (WEXITSTATUS(status) == 0) return;
      } else {
        expect_consistent_journal(journal, true);
      }
      if (unsharded_output_done_check && fs::exists(dir / "out" / "manifest.json")) return;  // killed after publishing
      continue;
    }
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0) << read_file(dir / "child.log");
    return;
  }
  FAIL() << "the run never finished";
}

double seconds_of(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void crash_test(int signo) {
  const fs::path dir = scratch_dir(signo == SIGKILL ? "sigkill" : "sigterm");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  double reference_seconds = 0;
  reference_seconds = seconds_of([&] {
    const auto r = cli("run " + config.string() + " -q --threads 1 --batch-size 1 -o " + (dir / "reference").string(), dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  });
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("random seed " + std::to_string(seed));
  std::mt19937 random(seed);
  KillStats stats;
  // Kills spread over the whole run (startup, batches, publishing): each start gets a slice of it.
  const double max_delay = std::max(0.02, reference_seconds / 8);
  for (int round = 0; stats.kills < 20 || round < 2; ++round) {
    const fs::path work = dir / ("round" + std::to_string(round));
    fs::create_directories(work);
    if (round % 2 == 0) {  // an unsharded run: journal beside the output, published by one rename
      run_until_done({"run", config.string(), "-q", "--threads", "2", "--batch-size", "1", "-o", (work / "out").string()},
                     work, work / ".out.inprogress" / "journal", signo, max_delay, random, stats, true);
      if (::testing::Test::HasFatalFailure()) return;
      expect_same_results(dir / "reference", work / "out");
    } else {  // two shards, each killed at random, then a merge
      for (int shard = 0; shard < 2; ++shard)
        run_until_done({"run", config.string(), "-q", "--threads", "2", "--batch-size", "1", "--shard",
                        std::to_string(shard) + "/2", "-o", (work / "sweep").string()},
                       work, work / "sweep" / ("shard-" + std::to_string(shard) + "-of-2") / "journal", signo, max_delay,
                       random, stats, false);
      if (::testing::Test::HasFatalFailure()) return;
      const auto merged = cli("merge -q " + (work / "sweep").string(), work);
      ASSERT_EQ(merged.exit_code, 0) << merged.output;
      expect_same_results(dir / "reference", work / "sweep");
    }
    ASSERT_LT(round, 20) << "too few kills landed";
  }
  EXPECT_GE(stats.kills, 20);
  std::printf("%d kills with signal %d over %d starts\n", stats.kills, signo, stats.runs);
}

}  // namespace

TEST(Resume, KilledWithSigkillAtRandomMomentsThenRerunEqualsAnUninterruptedRun) { crash_test(SIGKILL); }

TEST(Resume, StoppedWithSigtermAtRandomMomentsThenRerunEqualsAnUninterruptedRun) { crash_test(SIGTERM); }

TEST(Resume, TornTailIsDroppedAndCorruptionExitsTwoWithoutTouchingTheJournal) {
  const fs::path dir = scratch_dir("journal");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  ASSERT_EQ(cli("run " + config.string() + " -q --batch-size 4 -o " + (dir / "reference").string(), dir).exit_code, 0);
  const std::string out = (dir / "sweep").string();
  const std::string shard0 = fmt::format("run {} -q --batch-size 4 --shard 0/2 -o {}", config.string(), out);
  ASSERT_EQ(cli(shard0, dir).exit_code, 0);
  ASSERT_EQ(cli(fmt::format("run {} -q --shard 1/2 -o {}", config.string(), out), dir).exit_code, 0);
  const fs::path journal = dir / "sweep" / "shard-0-of-2" / "journal";
  const std::string intact = read_file(journal);
  const cs::JournalContents contents = cs::read_journal(journal);
  ASSERT_GE(contents.records, 3u);

  // Truncated in the middle of its last record: merge reports the shard incomplete; a rerun recomputes it.
  fs::resize_file(journal, intact.size() - 100);
  fs::remove(dir / "sweep" / "shard-0-of-2" / "manifest.json");
  auto r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("shard 0: " + std::to_string(contents.results.size() - 4) + " of"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--shard 0/2"), std::string::npos) << r.output;
  r = cli(shard0, dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(cs::read_journal(journal).results.size(), contents.results.size());

  // One flipped byte in an early record: run and merge refuse, naming the file; nothing changes.
  std::string damaged = read_file(journal);
  damaged[damaged.size() / 3] ^= 0x5a;
  write_text(journal, damaged);
  r = cli(shard0, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("corrupted"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(journal.string()), std::string::npos) << r.output;
  EXPECT_EQ(read_file(journal), damaged);
  r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("corrupted"), std::string::npos) << r.output;
  // A damaged header too.
  std::string header_damaged = intact;
  header_damaged[40] ^= 0x01;
  write_text(journal, header_damaged);
  r = cli(shard0, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("header"), std::string::npos) << r.output;

  write_text(journal, intact);
  ASSERT_EQ(cli("merge " + out, dir).exit_code, 0);
  expect_same_results(dir / "reference", dir / "sweep");
}

// A full disk (a file-size limit, which fails writes the same way without privileges): exit 2,
// the recorded networks stay, and a rerun with room finishes the sweep.
TEST(Resume, FullDiskExitsTwoAndKeepsCompletedWork) {
  const fs::path dir = scratch_dir("fulldisk");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  ASSERT_EQ(cli("run " + config.string() + " -q -o " + (dir / "reference").string(), dir).exit_code, 0);
  const std::string run = fmt::format("{} run {} -q --batch-size 2 -o {}", CAUSALSWEEP_BINARY, config.string(),
                                      (dir / "out").string());
  const auto r = shell("ulimit -f 12 && " + run, dir);  // 12 KiB per file
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("File too large"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("are safe"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
  const fs::path journal = dir / ".out.inprogress" / "journal";
  const cs::JournalContents partial = cs::read_journal(journal);
  EXPECT_GT(partial.results.size(), 0u);
  EXPECT_EQ(partial.torn_bytes, 0u);
  const auto resumed = shell(run, dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_results(dir / "reference", dir / "out");
  EXPECT_FALSE(fs::exists(dir / ".out.inprogress"));
}

TEST(Resume, AnInterruptedRunOfAnotherConfigIsNeverMixedIn) {
  const fs::path dir = scratch_dir("resume-other");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  std::string other = sweep;
  other.replace(other.find("count = 6"), 9, "count = 5");
  const fs::path other_config = write_text(dir / "other.toml", other);
  const auto r = shell(fmt::format("ulimit -f 12 && {} run {} -q --batch-size 2 -o {}", CAUSALSWEEP_BINARY,
                                   config.string(), (dir / "out").string()),
                       dir);
  ASSERT_EQ(r.exit_code, 2) << r.output;
  const std::string journal = read_file(dir / ".out.inprogress" / "journal");
  const auto o = cli(fmt::format("run {} -q -o {}", other_config.string(), (dir / "out").string()), dir);
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("config_hash"), std::string::npos) << o.output;
  EXPECT_EQ(read_file(dir / ".out.inprogress" / "journal"), journal);
}

TEST(Resume, TheSameShardRunningTwiceIsRefused) {
  const fs::path dir = scratch_dir("resume-twice");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  const std::vector<std::string> args{"run", config.string(), "-q", "--threads", "1", "--batch-size", "1",
                                      "--shard", "0/1", "-o", (dir / "sweep").string()};
  const pid_t first = spawn_cli(args, dir);
  ASSERT_GT(first, 0);
  const fs::path journal = dir / "sweep" / "shard-0-of-1" / "journal";
  for (int i = 0; i < 2000 && !fs::exists(journal); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto second = cli(fmt::format("run {} -q --shard 0/1 -o {}", config.string(), (dir / "sweep").string()), dir);
  int status = 0;
  const bool first_still_running = waitpid(first, &status, WNOHANG) == 0;
  if (first_still_running) {
    EXPECT_EQ(second.exit_code, 2) << second.output;
    EXPECT_NE(second.output.find("in use by another causalsweep process"), std::string::npos) << second.output;
    kill(first, SIGTERM);
    waitpid(first, &status, 0);
  }
  expect_consistent_journal(journal, false);
}
