// Sharded sweeps: N shards merged equal one run bit for bit; slices are disjoint, complete and
// balanced; bad shard input, foreign shard directories and incomplete sweeps exit 2 with the
// command that fixes them; `submit --slurm --dry-run` and a missing sbatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <regex>

#include "causalsweep/config.hpp"
#include "shard.hpp"
#include "shard_helpers.hpp"

namespace cs = causalsweep;
using namespace cs::testing;

namespace {

// Several axes, so that slices cut across sizes, lengths, etas and seeds.
const char* sweep = R"(name = "shards"
[model]
n_neurons = [6, 11]
timesteps = [300, 700]
eta = [0.5, 2.0]
observed_ratio = [1.0, 0.5]
[seeds]
count = 5
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
)";

}  // namespace

TEST(Shard, MergedShardsEqualOneRunBitForBit) {
  const fs::path dir = scratch_dir("shard");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  const auto single = cli("run " + config.string() + " -q -o " + (dir / "single").string(), dir);
  ASSERT_EQ(single.exit_code, 0) << single.output;
  for (int n : {1, 2, 3, 7}) {
    const fs::path out = dir / ("sharded-" + std::to_string(n));
    for (int i = n - 1; i >= 0; --i) {  // any order
      const auto r = cli(fmt::format("run {} -q --threads {} --shard {}/{} -o {}", config.string(), 1 + i % 2, i, n,
                                     out.string()),
                         dir);
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    const auto merged = cli("merge " + out.string(), dir);
    ASSERT_EQ(merged.exit_code, 0) << merged.output;
    SCOPED_TRACE("N = " + std::to_string(n));
    expect_same_results(dir / "single", out);
    // The merged manifest names every shard; a second merge changes nothing.
    const auto m = nlohmann::json::parse(read_file(out / "manifest.json"));
    EXPECT_EQ(m["shards"].size(), static_cast<size_t>(n));
    const std::string before = read_file(out / "runs.csv");
    EXPECT_EQ(cli("merge " + out.string(), dir).exit_code, 0);
    EXPECT_EQ(read_file(out / "runs.csv"), before);
  }
}

TEST(Shard, SlicesAreDisjointCompleteDeterministicAndBalancedByCost) {
  cs::SweepConfig config = cs::parse_config(sweep, "<test>");
  const cs::SweepGrid grid = cs::expand_grid(config);
  for (int n : {1, 2, 3, 7, 40, 45}) {
    const auto shards = cs::assign_shards(grid, n);
    ASSERT_EQ(shards.size(), static_cast<size_t>(n));
    EXPECT_EQ(shards, cs::assign_shards(grid, n));
    std::vector<uint64_t> all;
    double max_cost = 0, lo = 1e300, hi = 0;
    for (const auto& t : grid.networks) max_cost = std::max(max_cost, cs::network_cost(t, grid.estimators, grid.observed_ratios));
    for (const auto& s : shards) {
      EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
      double load = 0;
      for (uint64_t i : s) load += cs::network_cost(grid.networks[i], grid.estimators, grid.observed_ratios);
      lo = std::min(lo, load);
      hi = std::max(hi, load);
      all.insert(all.end(), s.begin(), s.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<uint64_t> expected(grid.networks.size());
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(all, expected) << n;
    // Greedy on cost: no shard is more than one network's cost above the lightest.
    if (static_cast<size_t>(n) <= grid.networks.size()) EXPECT_LE(hi - lo, max_cost * (1 + 1e-12)) << n;
  }
}

TEST(Shard, DefaultShardComesFromTheSlurmArray) {
  const auto set = [](const char* k, const char* v) { v ? setenv(k, v, 1) : unsetenv(k); };
  const auto with = [&](const char* id, const char* count, const char* min, const char* step, const char* max) {
    set("SLURM_ARRAY_TASK_ID", id);
    set("SLURM_ARRAY_TASK_COUNT", count);
    set("SLURM_ARRAY_TASK_MIN", min);
    set("SLURM_ARRAY_TASK_STEP", step);
    set("SLURM_ARRAY_TASK_MAX", max);
  };
  with(nullptr, nullptr, nullptr, nullptr, nullptr);
  EXPECT_FALSE(cs::shard_from_slurm_environment().has_value());
  with("4", "7", "0", "1", "6");
  auto s = cs::shard_from_slurm_environment();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->index, 4);
  EXPECT_EQ(s->count, 7);
  with("9", "4", "3", "2", "9");  // --array=3-9:2: tasks 3, 5, 7, 9
  s = cs::shard_from_slurm_environment();
  EXPECT_EQ(s->index, 3);
  EXPECT_EQ(s->count, 4);
  with("4", "4", "3", "2", "9");  // not on the step
  EXPECT_THROW(cs::shard_from_slurm_environment(), cs::InputError);
  with("8", "3", "1", nullptr, "8");  // --array=1,4,8: irregular
  EXPECT_THROW(cs::shard_from_slurm_environment(), cs::InputError);
  with(nullptr, nullptr, nullptr, nullptr, nullptr);
}

TEST(Shard, BadShardArgumentsExitTwoAndWriteNothing) {
  const fs::path dir = scratch_dir("shard-bad");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  for (const char* bad : {"3/3", "x/2", "1", "0/0", "-1/2", "1/2/3", "/4"}) {
    const auto r = cli(fmt::format("run {} --shard {} -o {}", config.string(), bad, (dir / "o").string()), dir);
    EXPECT_EQ(r.exit_code, 2) << bad << r.output;
    EXPECT_NE(r.output.find("--shard"), std::string::npos) << r.output;
  }
  const auto env = shell(fmt::format("SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=3 {} run {} -o {}", CAUSALSWEEP_BINARY,
                                     config.string(), (dir / "o").string()),
                         dir);
  EXPECT_EQ(env.exit_code, 2) << env.output;
  EXPECT_NE(env.output.find("--shard I/N"), std::string::npos) << env.output;
  EXPECT_FALSE(fs::exists(dir / "o"));
  // Inside a regular array the shard comes from the environment.
  const auto ok = shell(fmt::format("SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=3 "
                                    "SLURM_ARRAY_TASK_MAX=3 {} run {} -q -o {}",
                                    CAUSALSWEEP_BINARY, config.string(), (dir / "o").string()),
                        dir);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(fs::exists(dir / "o" / "shard-1-of-3" / "manifest.json"));
}

TEST(Shard, ForeignShardsAndSweepsAreRefusedAndNothingIsLost) {
  const fs::path dir = scratch_dir("shard-foreign");
  const fs::path a = write_text(dir / "a.toml", sweep);
  std::string other = sweep;
  other.replace(other.find("count = 5"), 9, "count = 4");
  const fs::path b = write_text(dir / "b.toml", other);
  const std::string out = (dir / "sweep").string();
  ASSERT_EQ(cli(fmt::format("run {} -q --shard 0/2 -o {}", a.string(), out), dir).exit_code, 0);
  const std::string journal = read_file(dir / "sweep" / "shard-0-of-2" / "journal");

  // Another config, or another shard count, into the same sweep directory.
  for (const std::string& args : {fmt::format("run {} -q --shard 1/2 -o {}", b.string(), out),
                                  fmt::format("run {} -q --shard 1/3 -o {}", a.string(), out)}) {
    const auto r = cli(args, dir);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("belongs to another sweep"), std::string::npos) << r.output;
  }
  // A shard directory of another sweep copied in: run and merge both refuse it.
  const std::string other_out = (dir / "other").string();
  ASSERT_EQ(cli(fmt::format("run {} -q --shard 1/2 -o {}", b.string(), other_out), dir).exit_code, 0);
  fs::copy(dir / "other" / "shard-1-of-2", dir / "sweep" / "shard-1-of-2");
  auto r = cli(fmt::format("run {} -q --shard 1/2 -o {}", a.string(), out), dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("another sweep or shard"), std::string::npos) << r.output;
  r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("shard-1-of-2"), std::string::npos) << r.output;
  fs::remove_all(dir / "sweep" / "shard-1-of-2");
  fs::create_directories(dir / "sweep" / "shard-0-of-3");
  r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not a shard of this sweep"), std::string::npos) << r.output;
  fs::remove_all(dir / "sweep" / "shard-0-of-3");
  EXPECT_EQ(read_file(dir / "sweep" / "shard-0-of-2" / "journal"), journal);  // nothing completed was lost

  // A sweep directory written by another version is not merged.
  auto identity = nlohmann::json::parse(read_file(dir / "sweep" / "sweep.json"));
  const auto saved = identity;
  identity["version"] = "0.0.0-other";
  write_text(dir / "sweep" / "sweep.json", identity.dump());
  r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("version"), std::string::npos) << r.output;
  // A truncated sweep.json: a clear message, for run and merge alike.
  write_text(dir / "sweep" / "sweep.json", saved.dump().substr(0, 40));
  r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("sweep.json' is corrupted"), std::string::npos) << r.output;
  r = cli(fmt::format("run {} -q --shard 1/2 -o {}", a.string(), out), dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("sweep.json' is corrupted"), std::string::npos) << r.output;
  write_text(dir / "sweep" / "sweep.json", saved.dump());
  ASSERT_EQ(cli(fmt::format("run {} -q --shard 1/2 -o {}", a.string(), out), dir).exit_code, 0);
  ASSERT_EQ(cli("merge " + out, dir).exit_code, 0);
  EXPECT_EQ(read_file(dir / "sweep" / "shard-0-of-2" / "journal"), journal);
  EXPECT_EQ(cli("merge /nonexistent/sweep", dir).exit_code, 2);
}

// merge names the incomplete shards and prints the commands that rerun exactly those; running the
// printed commands completes the sweep.
TEST(Shard, MergeNamesMissingShardsWithTheCommandsThatRerunThem) {
  const fs::path dir = scratch_dir("shard-missing");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  const std::string out = (dir / "sweep").string();
  ASSERT_EQ(cli(fmt::format("run {} -q --shard 1/3 -o {}", config.string(), out), dir).exit_code, 0);
  const auto r = cli("merge " + out, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("2 of 3 shard(s) are not complete"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("shard 0: never started"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("shard 2: never started"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("shard 1:"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "sweep" / "runs.csv"));
  std::vector<std::string> commands;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (line.find(" run ") != std::string::npos && line.find("--shard") != std::string::npos) commands.push_back(line);
  ASSERT_EQ(commands.size(), 2u) << r.output;
  EXPECT_NE(commands[0].find("--shard 0/3"), std::string::npos);
  for (const auto& c : commands) ASSERT_EQ(shell(c + " -q", dir).exit_code, 0) << c;
  ASSERT_EQ(cli("merge " + out, dir).exit_code, 0);
  ASSERT_EQ(cli("run " + config.string() + " -q -o " + (dir / "single").string(), dir).exit_code, 0);
  expect_same_results(dir / "single", dir / "sweep");
}

TEST(Submit, DryRunPrintsBothScriptsAndSubmitsNothing) {
  const fs::path dir = scratch_dir("submit");
  const fs::path config = write_text(dir / "sweep.toml", std::string(sweep) + "[slurm]\npartition = \"cpu\"\ntime = \"1:00:00\"\n");
  const std::string out = (dir / "sweep").string();
  const auto r = cli(fmt::format("submit {} --slurm --dry-run -o {} --tasks 7 --throttle 3 --account lab --mem 2G "
                                 "--cpus-per-task 2 --gpus-per-task 1",
                                 config.string(), out),
                     dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* expected :
       {"networks: 40", "array tasks: 7", "#SBATCH --array=0-6%3", "#SBATCH --partition=cpu", "#SBATCH --account=lab",
        "#SBATCH --time=1:00:00", "#SBATCH --mem=2G", "#SBATCH --cpus-per-task=2", "#SBATCH --gpus-per-task=1",
        "#SBATCH --signal=B:USR1@120", "--shard \"$SLURM_ARRAY_TASK_ID/7\"", "--dependency=afterok", " merge ",
        "scontrol requeue"})
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n" << r.output;
  EXPECT_FALSE(fs::exists(out));
  // Defaults: tasks from the cost (this grid is small: one task).
  const auto d = cli(fmt::format("submit {} --slurm --dry-run -o {}", config.string(), out), dir);
  EXPECT_EQ(d.exit_code, 0) << d.output;
  EXPECT_NE(d.output.find("#SBATCH --array=0-0\n"), std::string::npos) << d.output;
  // Too short a limit for the 120 s warning: no --signal (it would fire at once and requeue forever).
  const auto short_limit = cli(fmt::format("submit {} --slurm --dry-run --time 5", config.string()), dir);
  EXPECT_EQ(short_limit.output.find("--signal"), std::string::npos) << short_limit.output;
  EXPECT_NE(cli(fmt::format("submit {} --slurm --dry-run --time 1-0", config.string()), dir).output.find("--signal=B:USR1@120"),
            std::string::npos);
  EXPECT_EQ(cli(fmt::format("submit {} --dry-run", config.string()), dir).exit_code, 2);  // no --slurm
  EXPECT_EQ(cli(fmt::format("submit {} --slurm --dry-run --tasks 41", config.string()), dir).exit_code, 2);
  EXPECT_EQ(cli(fmt::format("submit {} --slurm --dry-run --partition 'a b'", config.string()), dir).exit_code, 2);
  const fs::path bad = write_text(dir / "bad.toml", std::string(sweep) + "[slurm]\ntime = \"1 day\"\n");
  const auto b = cli(fmt::format("submit {} --slurm --dry-run", bad.string()), dir);
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.output.find("slurm.time"), std::string::npos) << b.output;
}

TEST(Submit, MissingSbatchExitsTwoAndKeepsTheScripts) {
  const fs::path dir = scratch_dir("submit-nosbatch");
  const fs::path config = write_text(dir / "sweep.toml", sweep);
  const std::string out = (dir / "sweep").string();
  const auto r = shell(fmt::format("PATH=/nonexistent {} submit {} --slurm --tasks 2 -o {}", CAUSALSWEEP_BINARY,
                                   config.string(), out),
                       dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("sbatch is not on PATH"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir / "sweep" / "slurm" / "array.sbatch"));
  EXPECT_TRUE(fs::exists(dir / "sweep" / "slurm" / "merge.sbatch"));
  EXPECT_TRUE(fs::exists(dir / "sweep" / "sweep.json"));
  // The written array script runs a shard by hand exactly as SLURM would.
  const auto task = shell(fmt::format("SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_JOB_ID=0 bash {}/slurm/array.sbatch", out), dir);
  EXPECT_EQ(task.exit_code, 0) << task.output;
  EXPECT_TRUE(fs::exists(dir / "sweep" / "shard-1-of-2" / "manifest.json"));
}
