// Model families in the shared engine (the n_to_1 spiking model): [model] family configs and their
// errors, the grid and its output columns, and whole runs through the CLI: outputs, sharding + merge
// and resume give the same rows as one uninterrupted run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "causalsweep/config.hpp"
#include "causalsweep/cuda_devices.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/model_family.hpp"
#include "plot.hpp"
#include "shard_helpers.hpp"

namespace causalsweep {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::read_file;
using testing::scratch_dir;
using testing::write_text;

const fs::path kSourceDir = CAUSALSWEEP_SOURCE_DIR;

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "test.toml");
  } catch (const InputError& e) {
    return e.what();
  }
  return {};
}

void expect_error(const std::string& text, std::initializer_list<std::string_view> fragments) {
  const std::string message = error_of(text);
  ASSERT_FALSE(message.empty()) << "expected an InputError for:\n" << text;
  for (const auto fragment : fragments)
    EXPECT_NE(message.find(fragment), std::string::npos) << "missing '" << fragment << "' in: " << message;
}

size_t parameter_index(std::string_view key) {
  const auto& parameters = n_to_1_family().parameters();
  for (size_t i = 0; i < parameters.size(); ++i)
    if (parameters[i].key == key) return i;
  ADD_FAILURE() << "no parameter " << key;
  return 0;
}

TEST(Family, RegistryKnowsRateAndNTo1) {
  EXPECT_EQ(find_model_family("rate"), nullptr);  // built in
  ASSERT_NE(find_model_family("n_to_1"), nullptr);
  EXPECT_EQ(find_model_family("n_to_1")->name(), "n_to_1");
  EXPECT_EQ(find_model_family("spiking"), nullptr);
  const auto names = model_family_names();
  EXPECT_EQ(names.front(), "rate");
  EXPECT_NE(std::find(names.begin(), names.end(), "n_to_1"), names.end());
  EXPECT_EQ(parameter_points({{1, 2}, {3}, {4, 5, 6}}).size(), 6u);
  EXPECT_EQ(parameter_points({{1, 2}, {4, 5}})[1], (std::vector<double>{1, 5}));  // the last axis varies fastest
}

TEST(Family, NotebookSweepConfig) {
  const SweepConfig config = load_config(kSourceDir / "configs" / "n_to_1_vary_syncond_ratio.toml");
  EXPECT_EQ(config.model.family, "n_to_1");
  const auto& parameters = n_to_1_family().parameters();
  ASSERT_EQ(config.axes.parameters.size(), parameters.size());
  EXPECT_EQ(config.axes.parameters[parameter_index("inh_exc_ratio")],
            (std::vector<double>{0.5, 1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(config.axes.parameters[parameter_index("duration_s")], std::vector<double>{600});
  EXPECT_EQ(config.axes.parameters[parameter_index("inputs")], std::vector<double>{30});
  EXPECT_TRUE(std::isnan(config.axes.parameters[parameter_index("dg_inh_ns")][0]));  // derived from the ratio
  EXPECT_EQ(config.axes.seeds.size(), 20u);
  ASSERT_EQ(config.estimators.size(), 1u);
  EXPECT_EQ(config.estimators[0].method, EstimatorMethod::sta_shuffle);
  EXPECT_EQ(config.estimators[0].shuffles, 100);
  EXPECT_EQ(config.estimators[0].threshold, 0.05);

  const SweepGrid grid = expand_grid(config);
  EXPECT_EQ(grid.family, &n_to_1_family());
  EXPECT_EQ(grid.networks.size(), 140u);
  EXPECT_EQ(grid.runs(), 140u);
  EXPECT_EQ(network_axis_names(grid), std::vector<std::string>{"inh_exc_ratio"});
  EXPECT_EQ(network_axis_values(grid, grid.networks[20]), std::vector<double>{1});  // seed fastest
  EXPECT_EQ(grid.networks[20].seed, 0u);
  EXPECT_GT(network_cost(grid.networks[0], grid), 1e10);  // STAs: ~3.6e10 additions per run
  EXPECT_GT(network_memory_bytes(grid.networks[0], grid), uint64_t{48} << 20);  // 6e6 float64 samples at least

  const nlohmann::json json = to_json(config);
  EXPECT_EQ(json["model"]["family"], "n_to_1");
  EXPECT_EQ(json["model"]["inh_exc_ratio"].size(), 7u);
  EXPECT_TRUE(json["model"]["dg_inh_ns"][0].is_null());
  EXPECT_EQ(json["estimators"][0]["shuffles"], 100);
}

TEST(Family, DefaultsAndEstimatorOptions) {
  // No [estimators]: the family's own test with its defaults.
  SweepConfig config = parse_config("[model]\nfamily = \"n_to_1\"\n", "t.toml");
  ASSERT_EQ(config.estimators.size(), 1u);
  EXPECT_EQ(config.estimators[0].label, "sta_shuffle");
  EXPECT_EQ(config.estimators[0].shuffles, 100);
  EXPECT_EQ(config.estimators[0].threshold, 0.05);
  EXPECT_EQ(expand_grid(config).networks.size(), 10u);  // 10 seeds by default, one parameter point
  EXPECT_TRUE(network_axis_names(expand_grid(config)).empty());
  // Options without naming use; two labels with different settings.
  config = parse_config("[model]\nfamily = \"n_to_1\"\n[estimators.sta_shuffle]\nshuffles = 20\n", "t.toml");
  EXPECT_EQ(config.estimators[0].shuffles, 20);
  config = parse_config(
      "[model]\nfamily = \"n_to_1\"\ninputs = [6, 10]\n[estimators]\nuse = [\"sta_shuffle\", \"strict\"]\n"
      "[estimators.strict]\nmethod = \"sta_shuffle\"\nthreshold = 0.01\n",
      "t.toml");
  ASSERT_EQ(config.estimators.size(), 2u);
  EXPECT_EQ(config.estimators[1].threshold, 0.01);
  EXPECT_EQ(config.axes.parameters[parameter_index("inputs")], (std::vector<double>{6, 10}));
  // family = "rate" is the rate model, as without the key.
  config = parse_config("[model]\nfamily = \"rate\"\nn_neurons = 4\ntimesteps = 100\n[estimators]\nuse = [\"ols\"]\n",
                        "t.toml");
  EXPECT_EQ(config.model.family, "rate");
  EXPECT_EQ(expand_grid(config).family, nullptr);
}

TEST(Family, ConfigErrorsNameKeyLineAndWhatIsAllowed) {
  expect_error("[model]\nfamily = \"spiking\"\n",
               {"test.toml:2: key 'model.family' has value \"spiking\": unknown model family; must be one of",
                "\"rate\"", "\"n_to_1\""});
  expect_error("[model]\nfamily = 3\n", {"test.toml:2: key 'model.family'", "(got an integer)"});
  expect_error("[model]\nfamily = \"n_to_1\"\nn_neurons = 40\n",
               {"test.toml:3: key 'model.n_neurons' has value 40: unknown key for model family n_to_1; allowed keys "
                "in model: family, duration_s"});
  expect_error("[model]\nfamily = \"n_to_1\"\ninputs = 2.5\n",
               {"test.toml:3: key 'model.inputs' has value 2.5: must be an integer in [1, 65535]", "(got a float)"});
  expect_error("[model]\nfamily = \"n_to_1\"\nspike_snr = [20, -1]\n",
               {"test.toml:3: key 'model.spike_snr[1]' has value -1: must be a finite number > 0"});
  expect_error("[model]\nfamily = \"n_to_1\"\np_connected = 1.5\n",
               {"test.toml:3: key 'model.p_connected' has value 1.5: must be a number in [0, 1]"});
  expect_error("[model]\nfamily = \"n_to_1\"\ndg_inh_ns = 1.6\ninh_exc_ratio = [1, 2]\n",
               {"test.toml:4: key 'model.inh_exc_ratio'", "cannot be combined with model.dg_inh_ns (line 3)"});
  expect_error("[model]\nfamily = \"n_to_1\"\n[estimators]\nuse = [\"lasso\"]\n",
               {"test.toml:4: key 'estimators.use[0]' has value \"lasso\": method lasso does not apply to model "
                "family n_to_1; allowed: sta_shuffle"});
  expect_error("[model]\nn_neurons = 4\ntimesteps = 100\n[estimators]\nuse = [\"sta_shuffle\"]\n",
               {"test.toml:5: key 'estimators.use[0]'", "method sta_shuffle does not apply to model family rate"});
  expect_error("[model]\nfamily = \"n_to_1\"\n[estimators.sta_shuffle]\nshuffles = 0\n",
               {"test.toml:4: key 'estimators.sta_shuffle.shuffles' has value 0: must be an integer in [1, 65536]"});
  expect_error("[model]\nfamily = \"n_to_1\"\n[estimators.sta_shuffle]\nthreshold = 1.5\n",
               {"test.toml:4: key 'estimators.sta_shuffle.threshold' has value 1.5: must be a number in [0, 1]"});
  expect_error("[model]\nfamily = \"n_to_1\"\n[estimators.sta_shuffle]\nalpha = 0.1\n",
               {"test.toml:4: key 'estimators.sta_shuffle.alpha'", "allowed keys in estimators.sta_shuffle (method "
                                                                    "sta_shuffle): method, shuffles, threshold"});
  expect_error("[model]\nfamily = \"n_to_1\"\n[scores]\nkeep_matrices = \"all\"\n",
               {"test.toml:4: key 'scores.keep_matrices'", "must be \"none\" for model family n_to_1"});
  // A combination the model cannot run (window longer than the recording) names the swept values.
  expect_error("[model]\nfamily = \"n_to_1\"\nduration_s = [0.05, 10]\nwindow_ms = 100\n",
               {"test.toml:1: [model] (family n_to_1) at duration_s = 0.05:"});
}

// A tiny n_to_1 sweep for whole runs: 2 s recordings, 6 inputs, 20 surrogates, 2 ratios x 3 seeds.
const char* kTinySweep = R"(name = "tiny_n_to_1"
[model]
family = "n_to_1"
duration_s = 2
inputs = 6
p_inhibitory = 0.5
inh_exc_ratio = [1, 8]
[seeds]
count = 3
[estimators.sta_shuffle]
shuffles = 20
[scores]
roc_seeds = [1]
)";

TEST(Family, NTo1RunWritesFamilyColumnsAndEveryScore) {
  const fs::path dir = scratch_dir("family-run");
  const fs::path config = write_text(dir / "tiny.toml", kTinySweep);
  const auto result = cli(fmt::format("run {} -o {} --threads 2 -q --no-report", config.string(), (dir / "out").string()), dir);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("fpr"), std::string::npos) << result.output;  // the summary's headline scores
  const std::string runs = read_file(dir / "out" / "runs.csv");
  EXPECT_EQ(runs.substr(0, runs.find('\n')), "network,seed,inh_exc_ratio,estimator,method,score,value,flags");
  // 6 runs x 8 scores (tpr, fpr, auc, tpr_exc, tpr_inh, auc_exc, auc_inh, output_rate).
  EXPECT_EQ(std::count(runs.begin(), runs.end(), '\n'), 1 + 6 * 8);
  for (const char* score : {",tpr,", ",fpr,", ",auc,", ",tpr_exc,", ",tpr_inh,", ",auc_exc,", ",auc_inh,", ",output_rate,"})
    EXPECT_NE(runs.find(score), std::string::npos) << score;
  EXPECT_EQ(runs.find("corr_with_truth"), std::string::npos);
  const std::string curves = read_file(dir / "out" / "curves.csv");
  EXPECT_EQ(curves.substr(0, curves.find('\n')),
            "inh_exc_ratio,estimator,method,score,count,nan_count,mean,std,sem,ci95_low,ci95_high");
  EXPECT_EQ(std::count(curves.begin(), curves.end(), '\n'), 1 + 2 * 8);
  const std::string roc = read_file(dir / "out" / "roc.csv");
  EXPECT_EQ(roc.substr(0, roc.find('\n')), "network,seed,inh_exc_ratio,estimator,method,point,fpr,tpr,threshold");
  EXPECT_GT(std::count(roc.begin(), roc.end(), '\n'), 2);  // seed 1's two runs kept their ROC points
  const auto manifest = nlohmann::json::parse(read_file(dir / "out" / "manifest.json"));
  EXPECT_EQ(manifest["config"]["model"]["family"], "n_to_1");

  // Figures: a dots-and-mean plot per score against the swept parameter, ROC curves of the kept runs
  // (where gnuplot is installed; the GPU machine has none).
  if (!plot::find_gnuplot().empty()) {
    const auto figures = cli("plot " + (dir / "out").string(), dir);
    ASSERT_EQ(figures.exit_code, 0) << figures.output;
    const std::string index = read_file(dir / "out" / "figures" / "index.json");
    for (const char* figure : {"tpr_inh_vs_inh_exc_ratio_dots", "output_rate_vs_inh_exc_ratio_dots", "roc_net1", "roc_net4"})
      EXPECT_NE(index.find(figure), std::string::npos) << figure << " in " << index;
    EXPECT_NE(read_file(dir / "out" / "figures" / "roc_net4.gp").find("p-values ranking the connected inputs"),
              std::string::npos);
  } else {
    std::printf("[          ] figures not checked: gnuplot not found (Debian: gnuplot-nox)\n");
  }

  // `plan` describes the family's axes; --backend cuda without a usable GPU is refused with the reason.
  const auto plan = cli("plan " + config.string(), dir);
  ASSERT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_NE(plan.output.find("model family n_to_1; axes: inh_exc_ratio 2  seeds 3"), std::string::npos) << plan.output;
  if (query_cuda_devices().count == 0) {  // where a GPU is visible, --backend cuda runs instead
    const auto cuda = cli(fmt::format("run {} -o {} --backend cuda -q", config.string(), (dir / "cuda").string()), dir);
    EXPECT_EQ(cuda.exit_code, 2) << cuda.output;
    EXPECT_NE(cuda.output.find("--backend cuda"), std::string::npos) << cuda.output;  // and why not
    EXPECT_FALSE(fs::exists(dir / "cuda"));
  }
  fs::remove_all(dir);
}

TEST(Family, NTo1ShardsMergeToTheSingleRun) {
  const fs::path dir = scratch_dir("family-shard");
  const fs::path config = write_text(dir / "tiny.toml", kTinySweep);
  const auto whole = cli(fmt::format("run {} -o {} --threads 1 -q --no-report", config.string(), (dir / "whole").string()), dir);
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  for (int i = 0; i < 3; ++i) {
    const auto shard = cli(fmt::format("run {} -o {} --shard {}/3 --threads 2 -q", config.string(),
                                       (dir / "sharded").string(), i), dir);
    ASSERT_EQ(shard.exit_code, 0) << shard.output;
  }
  const auto merged = cli(fmt::format("merge {} -q", (dir / "sharded").string()), dir);
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  for (const char* file : {"runs.csv", "curves.csv", "roc.csv"})
    EXPECT_EQ(read_file(dir / "sharded" / file), read_file(dir / "whole" / file)) << file;
  fs::remove_all(dir);
}

// The family's CUDA path gives the CPU backend's runs (same streams, same operation order).
TEST(FamilyDevice, NTo1CudaRunsEqualCpuRuns) {
  if (query_cuda_devices().count == 0) GTEST_SKIP() << "no CUDA device: " << query_cuda_devices().description;
  const fs::path dir = scratch_dir("family-cuda");
  const fs::path config = write_text(dir / "tiny.toml", kTinySweep);
  for (const char* backend : {"cpu", "cuda"}) {
    const auto r = cli(fmt::format("run {} -o {} --backend {} -q --no-report", config.string(),
                                   (dir / backend).string(), backend), dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto manifest = nlohmann::json::parse(read_file(dir / "cuda" / "manifest.json"));
  EXPECT_EQ(manifest["backend"]["name"], "cuda");
  EXPECT_EQ(read_file(dir / "cuda" / "runs.csv"), read_file(dir / "cpu" / "runs.csv"));
  EXPECT_EQ(read_file(dir / "cuda" / "roc.csv"), read_file(dir / "cpu" / "roc.csv"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace causalsweep
