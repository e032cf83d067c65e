// A real run that keeps matrices and ROC points: the files are complete, they reproduce the scored
// runs exactly, and `plot` draws heatmaps and ROC curves from them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "causalsweep/scores.hpp"
#include "fixture_io.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<std::vector<std::string>> read_rows(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    for (std::string cell; std::getline(s, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

}  // namespace

TEST(KeptOutputs, MatricesReproduceTheScoredRunsAndPlot) {
  std::string pattern = (fs::temp_directory_path() / "causalsweep-kept-XXXXXX").string();
  const fs::path dir = mkdtemp(pattern.data());
  std::ofstream(dir / "kept.toml") << R"(name = "kept"
[model]
n_neurons = 8
timesteps = 2000
eta = [1.0, 2.0]
observed_ratio = [1.0, 0.5]
[seeds]
count = 3
start = 5
[estimators]
use = ["correlation", "iv"]
[scores]
keep_matrices = "first_seed"
roc_seeds = [5]
)";
  const fs::path out = dir / "run";
  const std::string run = std::string(CAUSALSWEEP_BINARY) + " run " + (dir / "kept.toml").string() + " -q --no-report --backend cpu -o " +
                          out.string() + " > " + (dir / "log").string() + " 2>&1";
  ASSERT_EQ(std::system(run.c_str()), 0);

  // index: 2 grid points (eta) x first seed only x 2 ratios x 2 estimators.
  const auto index = read_rows(out / "matrices" / "index.csv");
  ASSERT_EQ(index.size(), 1u + 2 * 2 * 2);
  EXPECT_EQ(index[0], (std::vector<std::string>{"network", "seed", "observed", "estimator", "truth", "estimate"}));
  // corr_with_truth of every kept run, from runs.csv: (network, observed, estimator) -> value.
  std::map<std::tuple<std::string, std::string, std::string>, double> scored;
  for (const auto& row : read_rows(out / "runs.csv"))
    if (row.size() > 12 && row[11] == "corr_with_truth") scored[{row[0], row[8], row[9]}] = std::stod(row[12]);
  for (size_t i = 1; i < index.size(); ++i) {
    const auto& r = index[i];
    EXPECT_EQ(r[1], "5");
    const auto truth = causalsweep::testing::read_csv_matrix((out / "matrices" / r[4]).string());
    const auto estimate = causalsweep::testing::read_csv_matrix((out / "matrices" / r[5]).string());
    const int k = std::stoi(r[2]);
    ASSERT_EQ(truth.rows(), k);
    ASSERT_EQ(estimate.cols(), k);
    const double corr = causalsweep::pearson(truth.data(), estimate.data(), truth.size());
    const auto it = scored.find({r[0], r[2], r[3]});
    ASSERT_NE(it, scored.end());
    EXPECT_NEAR(corr, it->second, 1e-12) << "network " << r[0] << " k " << k << " " << r[3];
  }
  // ROC points of seed 5 only.
  const auto roc = read_rows(out / "roc.csv");
  ASSERT_GT(roc.size(), 1u);
  // Both appear in the manifest's file list, and plot draws them.
  std::ifstream manifest(out / "manifest.json");
  const std::string text((std::istreambuf_iterator<char>(manifest)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"roc.csv\""), std::string::npos);
  EXPECT_NE(text.find("\"matrices/\""), std::string::npos);
  if (std::system("command -v gnuplot > /dev/null") != 0) GTEST_SKIP() << "gnuplot not installed (gnuplot-nox)";
  const std::string plot = std::string(CAUSALSWEEP_BINARY) + " plot " + out.string() + " > " + (dir / "plot.log").string() + " 2>&1";
  ASSERT_EQ(std::system(plot.c_str()), 0);
  int heatmaps = 0, rocs = 0;
  for (const auto& f : fs::directory_iterator(out / "figures")) {
    const std::string name = f.path().filename().string();
    heatmaps += name.rfind("matrices_net", 0) == 0 && f.path().extension() == ".png";
    rocs += name.rfind("roc_net", 0) == 0 && f.path().extension() == ".png";
  }
  EXPECT_GE(heatmaps, 4);
  EXPECT_GE(rocs, 1);
}
