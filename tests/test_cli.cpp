// The causalsweep binary as a user runs it: exit codes, messages, outputs written atomically and
// never over an existing directory, files that pandas reads as they are.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "causalsweep/cuda_devices.hpp"

namespace fs = std::filesystem;

namespace {

struct CliResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

fs::path scratch_dir() {
  std::string pattern = (fs::temp_directory_path() / "causalsweep-cli-XXXXXX").string();
  return mkdtemp(pattern.data());
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CliResult run_shell(const std::string& command, const fs::path& dir) {
  const fs::path log = dir / "cli.log";
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(log)};
}

CliResult run_cli(const std::string& args, const fs::path& dir) {
  return run_shell(std::string(CAUSALSWEEP_BINARY) + " " + args, dir);
}

fs::path write_config(const fs::path& dir, const std::string& text) {
  const fs::path p = dir / "sweep.toml";
  std::ofstream(p) << text;
  return p;
}

const char* small_sweep = R"(name = "cli-test"
[model]
n_neurons = [6, 9]
timesteps = 400
eta = [1.0, 2.0]
observed_ratio = [1.0, 0.5]
[seeds]
count = 3
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
)";

}  // namespace

TEST(Cli, VersionAndHelp) {
  const fs::path dir = scratch_dir();
  const auto version = run_cli("--version", dir);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.output.find("causalsweep "), std::string::npos);
  EXPECT_EQ(run_cli("frobnicate", dir).exit_code, 2);
}

TEST(Cli, RunWritesTidyOutputsAtomically) {
  const fs::path dir = scratch_dir();
  const fs::path config = write_config(dir, small_sweep);
  const fs::path out = dir / "results" / "run1";
  const auto result = run_cli("run " + config.string() + " -o " + out.string() + " --threads 2", dir);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("corr_with_truth"), std::string::npos);

  // 2 sizes x 2 etas x 3 seeds = 12 networks; x 2 ratios x the scores that apply: correlation 2
  // (corr_with_truth, auc), lasso and ols 4 (+ tpr, fpr), iv 5 (+ first_stage_f) = 15.
  const std::string runs = read(out / "runs.csv");
  EXPECT_EQ(std::count(runs.begin(), runs.end(), '\n'), 1 + 12 * 2 * 15);
  EXPECT_EQ(runs.substr(0, runs.find('\n')),
            "network,seed,n_neurons,timesteps,p_connect,eta,perturb,observed_ratio,observed,estimator,method,score,"
            "value,flags");
  const std::string curves = read(out / "curves.csv");
  EXPECT_EQ(std::count(curves.begin(), curves.end(), '\n'), 1 + 2 * 2 * 2 * 15);

  const auto manifest = nlohmann::json::parse(read(out / "manifest.json"));
  EXPECT_EQ(manifest["grid"]["networks"], 12);
  // The default backend is auto: the GPU where one is usable (a device machine), else the CPU.
  EXPECT_EQ(manifest["backend"]["name"], causalsweep::query_cuda_devices().count > 0 ? "cuda" : "cpu");
  EXPECT_GT(manifest["seconds"]["wall"].get<double>(), 0.0);
  EXPECT_EQ(manifest["config"]["name"], "cli-test");
  EXPECT_TRUE(manifest.contains("git_commit"));
  EXPECT_TRUE(manifest["config_text"].get<std::string>().find("n_neurons = [6, 9]") != std::string::npos);
  // Nothing but the finished directory is left behind.
  for (const auto& entry : fs::directory_iterator(out.parent_path()))
    EXPECT_EQ(entry.path().filename(), "run1") << entry.path();
}

TEST(Cli, ExistingOutputDirectoryIsNeverOverwritten) {
  const fs::path dir = scratch_dir();
  const fs::path config = write_config(dir, small_sweep);
  const fs::path out = dir / "taken";
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "precious";
  const auto result = run_cli("run " + config.string() + " -o " + out.string(), dir);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("already exists"), std::string::npos) << result.output;
  EXPECT_EQ(read(out / "keep.txt"), "precious");
  EXPECT_FALSE(fs::exists(out / "runs.csv"));
}

TEST(Cli, ConfigErrorsExitTwoNamingKeyAndLineAndWriteNothing) {
  const fs::path dir = scratch_dir();
  const fs::path out = dir / "never";
  struct Case {
    std::string toml, expected;
  };
  const Case cases[] = {
      {"[model]\nn_neurons = 10\ntimesteps = 100\nobserved_ratio = [1.0, 1.5]\n[estimators]\nuse = [\"iv\"]\n",
       ":4: key 'model.observed_ratio[1]' has value 1.5"},
      {"[model]\nn_neurons = 10\ntimesteps = 100\nspeed = 3\n[estimators]\nuse = [\"iv\"]\n", "'model.speed'"},
      {"[model]\nn_neurons = 10\ntimesteps = 2\n[estimators]\nuse = [\"iv\"]\n", ":3: key 'model.timesteps'"},
      {"[model]\nn_neurons = 10\ntimesteps = 100\n[estimators]\nuse = [\"magic\"]\n", "magic"},
  };
  for (const Case& c : cases) {
    const fs::path config = write_config(dir, c.toml);
    const auto result = run_cli("run " + config.string() + " -o " + out.string(), dir);
    EXPECT_EQ(result.exit_code, 2) << c.toml;
    EXPECT_NE(result.output.find(c.expected), std::string::npos) << result.output;
    EXPECT_FALSE(fs::exists(out));
  }
  EXPECT_EQ(run_cli("run " + (dir / "missing.toml").string(), dir).exit_code, 2);
}

TEST(Cli, GridTooLargeForMemoryIsRefusedBeforeRunning) {
  const fs::path dir = scratch_dir();
  const fs::path config = write_config(dir, "[model]\nn_neurons = 20000\ntimesteps = 100\n[estimators]\nuse = [\"ols\"]\n");
  const auto result = run_cli("run " + config.string() + " --threads 8 -o " + (dir / "out").string(), dir);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("model.n_neurons"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
  const auto plan = run_cli("plan " + config.string() + " --threads 8", dir);
  EXPECT_EQ(plan.exit_code, 2);
}

TEST(Cli, PlanRunsNothing) {
  const fs::path dir = scratch_dir();
  const fs::path config = write_config(dir, small_sweep);
  const auto result = run_cli("plan " + config.string(), dir);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("networks simulated: 12"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("runs (network x observed ratio): 24"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "causalsweep-out"));
}

TEST(Cli, UnwritableOutputAndUnavailableBackendExitTwo) {
  const fs::path dir = scratch_dir();
  const fs::path config = write_config(dir, small_sweep);
  const auto unwritable = run_cli("run " + config.string() + " -o /proc/causalsweep/out", dir);
  EXPECT_EQ(unwritable.exit_code, 2) << unwritable.output;
  const auto bad_device = run_cli("run " + config.string() + " --devices 0,-1 -o " + (dir / "o").string(), dir);
  EXPECT_EQ(bad_device.exit_code, 2) << bad_device.output;
  EXPECT_NE(bad_device.output.find("--devices"), std::string::npos) << bad_device.output;
  EXPECT_FALSE(fs::exists(dir / "o"));
  const auto twice = run_cli("run " + config.string() + " --devices 1,0,1 -o " + (dir / "o").string(), dir);
  EXPECT_EQ(twice.exit_code, 2) << twice.output;
  EXPECT_NE(twice.output.find("--devices: device 1 is listed twice"), std::string::npos) << twice.output;
  EXPECT_FALSE(fs::exists(dir / "o"));
  if (causalsweep::query_cuda_devices().count > 0) GTEST_SKIP() << "a GPU is visible: --backend cuda is available here";
  const auto cuda = run_cli("run " + config.string() + " --backend cuda -o " + (dir / "o").string(), dir);
  EXPECT_EQ(cuda.exit_code, 2) << cuda.output;
  EXPECT_NE(cuda.output.find("--backend cuda"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "o"));
}

// runs.csv and curves.csv load in pandas as they are, with numeric columns and NaN understood.
TEST(Cli, OutputsReadByPandas) {
  if (std::system("/usr/bin/python3 -c 'import pandas' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "pandas is not installed for /usr/bin/python3 (Debian python3-pandas)";
  const fs::path dir = scratch_dir();
  const fs::path config = write_config(dir, small_sweep);
  const fs::path out = dir / "r";
  ASSERT_EQ(run_cli("run " + config.string() + " -q -o " + out.string(), dir).exit_code, 0);
  const std::string script =
      "import pandas as pd, sys\n"
      "r = pd.read_csv(sys.argv[1] + '/runs.csv'); c = pd.read_csv(sys.argv[1] + '/curves.csv')\n"
      "assert r['value'].dtype == 'float64' and r['eta'].dtype == 'float64', r.dtypes\n"
      "assert len(r) == 360 and set(r['score']) == {'corr_with_truth', 'auc', 'tpr', 'fpr', 'first_stage_f'}\n"
      "m = r[r.score == 'corr_with_truth'].groupby(['n_neurons', 'eta', 'observed_ratio', 'estimator'])['value'].mean()\n"
      "cm = c[c.score == 'corr_with_truth'].set_index(['n_neurons', 'eta', 'observed_ratio', 'estimator'])['mean']\n"
      "assert ((m - cm.loc[m.index]).abs() < 1e-12).all()\n";
  std::ofstream(dir / "check.py") << script;
  const auto check = run_shell("/usr/bin/python3 " + (dir / "check.py").string() + " " + out.string(), dir);
  EXPECT_EQ(check.exit_code, 0) << check.output;
}
