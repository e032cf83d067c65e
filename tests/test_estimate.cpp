// The user's data: the CSV and .npy readers (every bad input exits 2 naming file, row, column and what
// was expected), `causalsweep estimate` and `causalsweep iv` as a user runs them, the new config keys,
// the model variants (identity, p_inhibitory, connectivity_file), and the fuzzers' regressions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "causalsweep/config.hpp"
#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/gram.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"
#include "cpu_network.hpp"
#include "data_io.hpp"
#include "engine.hpp"

namespace cs = causalsweep;
namespace fs = std::filesystem;
using Eigen::MatrixXd;

namespace {

const fs::path source_dir = CAUSALSWEEP_SOURCE_DIR;
const fs::path fixtures = source_dir / "tests/reference/fixtures";

fs::path scratch() {
  std::string pattern = (fs::temp_directory_path() / "causalsweep-estimate-XXXXXX").string();
  return mkdtemp(pattern.data());
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

struct Run {
  int exit_code;
  std::string output;
};

Run cli(const std::string& args, const fs::path& dir) {
  const fs::path log = dir / "cli.log";
  const int status = std::system((std::string(CAUSALSWEEP_BINARY) + " " + args + " > " + log.string() + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(log)};
}

// The message of the InputError that parse_csv throws, or "" when it accepts the text.
std::string csv_error(const std::string& text, bool header = false) {
  try {
    cs::parse_csv(text, "data.csv", header);
  } catch (const cs::InputError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

TEST(DataIo, CsvReadsNumbersCrlfSpacesAndHeader) {
  const auto t = cs::parse_csv("a, b,c\r\n1, 2.5 ,-3e-2\r\n+4,5,6\n\n", "x.csv", true);
  EXPECT_EQ(t.header, (std::vector<std::string>{"a", "b", "c"}));
  MatrixXd expected(2, 3);
  expected << 1, 2.5, -0.03, 4, 5, 6;
  EXPECT_EQ(t.values, expected);
}

TEST(DataIo, CsvErrorsNameRowColumnAndValue) {
  EXPECT_HAS(csv_error("1,2,3\n4,5\n"), "data.csv: row 2: 2 cells, but row 1 has 3");
  EXPECT_HAS(csv_error("1,2\n3,abc\n"), "data.csv: row 2, column 2: value 'abc' is not a number: expected a finite number");
  EXPECT_HAS(csv_error("1,2\nnan,4\n"), "row 2, column 1: value 'nan' is not finite");
  EXPECT_HAS(csv_error("1,inf\n"), "row 1, column 2: value 'inf' is not finite");
  EXPECT_HAS(csv_error("1,,2\n"), "row 1, column 2: value '' is empty");
  EXPECT_HAS(csv_error("1e999\n"), "out of the float64 range");
  EXPECT_HAS(csv_error("1,2\n\n3,4\n"), "row 2: empty line");
  EXPECT_HAS(csv_error(""), "the file is empty");
  EXPECT_HAS(csv_error("x,y\n", true), "no data rows after the header");
  EXPECT_HAS(csv_error("x,x\n1,2\n", true), "row 1 (header), column 2: name 'x' appears twice");
  EXPECT_HAS(csv_error("x,y\n1,zz\n", true), "row 2, column 2 ('y'): value 'zz'");
  EXPECT_HAS(csv_error("1,\x01\n"), "value '\\x01'");
  EXPECT_EQ(csv_error("0x10\n").find("not a number") != std::string::npos, true);
}

TEST(DataIo, NpyFloatIntFortranAndErrors) {
  // Written by numpy (tests/fuzz/corpus): arange(6).reshape(2, 3) as float64, and as int32 in Fortran order.
  MatrixXd expected(2, 3);
  expected << 0, 1, 2, 3, 4, 5;
  EXPECT_EQ(cs::load_matrix(source_dir / "tests/fuzz/corpus/csv/small.npy"), expected);
  EXPECT_EQ(cs::load_matrix(source_dir / "tests/fuzz/corpus/csv/fortran.npy"), expected);
  const auto npy_error = [](const std::string& bytes) {
    try {
      cs::parse_npy(bytes, "x.npy");
    } catch (const cs::InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_HAS(npy_error("hello"), "missing the \\x93NUMPY magic");
  std::string good = slurp(source_dir / "tests/fuzz/corpus/csv/small.npy");
  EXPECT_HAS(npy_error(good.substr(0, good.size() - 1)), "data bytes, but shape and dtype need 48");
  std::string big_endian = good;
  big_endian.replace(big_endian.find("<f8"), 3, ">f8");
  EXPECT_HAS(npy_error(big_endian), "dtype '>f8'");
}

TEST(DataIo, FuzzerRegressionsAreRejectedCleanly) {
  // Each file once crashed or hung a reader (tests/fuzz/README.md); now each is an InputError.
  for (const auto& entry : fs::directory_iterator(source_dir / "tests/fuzz/regressions")) {
    const std::string bytes = slurp(entry.path());
    const std::string name = entry.path().filename().string();
    if (name.rfind("config-", 0) == 0) {
      EXPECT_THROW(cs::parse_config(bytes, name), cs::InputError) << name;
    } else {
      EXPECT_THROW(cs::parse_npy(bytes, name), cs::InputError) << name;
      EXPECT_THROW(cs::parse_csv(bytes, name, false), cs::InputError) << name;
    }
  }
}

TEST(Estimate, IvCommandReproducesTheSmokingExample) {
  const fs::path dir = scratch();
  const auto r = cli("iv " + (fixtures / "smoking.csv").string() + " --outcome Y --treatment T --instrument Z", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_HAS(r.output, "effect           -1.98375");  // the notebook prints -1.984 (true effect -2)
  EXPECT_HAS(r.output, "95% CI");
  EXPECT_HAS(r.output, "first-stage F");
  // The interval is effect -+ t_{0.975, 1998} se, with se and F from statsmodels (expected.json).
  const auto ref = nlohmann::json::parse(slurp(fixtures / "expected.json"))["smoking_iv"];
  const MatrixXd data = cs::parse_csv(slurp(fixtures / "smoking.csv"), "smoking.csv", true).values;
  const cs::ScalarIV iv = cs::scalar_two_stage_least_squares(data.col(3), data.col(1), data.col(0));
  EXPECT_NEAR(iv.ci_high - iv.effect, 1.9611520148602 * ref["se"].get<double>(), 1e-9);  // scipy t.ppf(0.975, 1998)
  EXPECT_NEAR(iv.t, ref["effect"].get<double>() / ref["se"].get<double>(), 1e-8 * std::abs(iv.t));
}

TEST(Estimate, IvCommandBadInputExits2) {
  const fs::path dir = scratch();
  const std::string smoking = (fixtures / "smoking.csv").string();
  auto r = cli("iv " + smoking + " --outcome Y --treatment T --instrument W", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_HAS(r.output, "--instrument 'W' is not a column: expected one of Z, T, C, Y");
  write(dir / "const.csv", "y,t,z\n1,2,3\n2,3,3\n3,5,3\n4,4,3\n");
  r = cli("iv " + (dir / "const.csv").string() + " --outcome y --treatment t --instrument z", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_HAS(r.output, "column 3 ('z', --instrument) is constant (3.0)");
  write(dir / "ragged.csv", "y,t,z\n1,2,3\n2,3\n");
  r = cli("iv " + (dir / "ragged.csv").string() + " --outcome y --treatment t --instrument z", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_HAS(r.output, "ragged.csv: row 3: 2 cells, but the header has 3");
}

TEST(Estimate, EstimateCommandWritesWhatTheLibraryComputes) {
  const fs::path dir = scratch();
  const fs::path out = dir / "out";
  const auto r = cli("estimate " + (fixtures / "var_X.csv").string() + " -z " + (fixtures / "var_Z.csv").string() +
                         " --truth " + (fixtures / "var_A.csv").string() +
                         " -e granger,granger_conditional,ols,iv --nonlinearity identity -o " + out.string(),
                     dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto json = nlohmann::json::parse(slurp(out / "estimates.json"));
  // The same numbers as statsmodels (test_granger.cpp checks the library; here the plumbing).
  const auto ref = nlohmann::json::parse(slurp(fixtures / "expected.json"))["significance"]["var"]["observed"][0];
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) {
      const double p = json["estimators"]["granger"]["p_value"][i][j].get<double>();
      EXPECT_NEAR(p, ref["granger"]["lr_p"][i][j].get<double>(), 1e-8 * p);
      EXPECT_EQ(json["estimators"]["granger"]["V"][i][j].get<double>(), ref["granger"]["decisions"]["none"][i][j].get<double>());
      const double t = json["estimators"]["iv"]["statistic"][i][j].get<double>();
      EXPECT_NEAR(t, ref["iv"]["t"][i][j].get<double>(), 1e-7 * std::max(1.0, std::abs(t)));
    }
  EXPECT_NEAR(json["estimators"]["iv"]["first_stage_f"].get<double>(), ref["iv"]["first_stage_f"].get<double>(),
              1e-8 * ref["iv"]["first_stage_f"].get<double>());
  EXPECT_NEAR(json["estimators"]["granger"]["scores"]["auc"].get<double>(), ref["granger"]["auc"].get<double>(), 1e-12);
  const std::string csv = slurp(out / "estimates.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 4 * 36);
  EXPECT_HAS(slurp(out / "scores.csv"), "granger,granger,tpr,");
  EXPECT_HAS(slurp(out / "roc.csv"), "granger,granger,0,0.0,0.0,");
}

TEST(Estimate, EstimateCommandBadInputExits2) {
  const fs::path dir = scratch();
  const auto expect_error = [&](const std::string& args, const std::string& message) {
    const auto r = cli("estimate " + args + " -o " + (dir / "never").string(), dir);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_HAS(r.output, message);
    EXPECT_FALSE(fs::exists(dir / "never"));
  };
  const std::string x = (fixtures / "rate_X.csv").string();
  write(dir / "z_small.csv", "0,1,0\n1,0,1\n");
  expect_error(x + " -z " + (dir / "z_small.csv").string() + " -e iv",
               "z_small.csv: instruments are 2 x 3 but " + x + " is 8 x 3000 (neurons x time points): expected the same shape");
  expect_error(x + " -e iv", "iv needs instruments");
  write(dir / "short.csv", "0.1,0.2,0.3\n0.2,0.3,0.1\n");
  expect_error((dir / "short.csv").string() + " -e granger",
               "3 time points (2 transitions), but estimator granger fits 3 parameters per neuron: expected at least 5");
  write(dir / "constant.csv", "0.1,0.2,0.3,0.4,0.5,0.6\n0.5,0.5,0.5,0.5,0.5,0.5\n");
  expect_error((dir / "constant.csv").string() + " -e correlation",
               "constant.csv: row 2 (neuron 2) is constant (0.5) over all 6 time points");
  write(dir / "constant_t.csv", "0.1,0.5\n0.2,0.5\n0.3,0.5\n0.4,0.5\n0.5,0.5\n0.6,0.5\n");
  expect_error((dir / "constant_t.csv").string() + " --transpose -e correlation",
               "constant_t.csv: column 2 (neuron 2) is constant (0.5) over all 6 time points");
  write(dir / "outside.csv", "0.1,0.2,0.3,0.4,0.5,0.6\n0.5,0.2,1.5,0.5,0.3,0.5\n");
  expect_error((dir / "outside.csv").string() + " -e ols",
               "outside.csv: row 2, column 3: value 1.5 is outside (0, 1): ols, lasso and iv regress logit(x[t+1])");
  write(dir / "nan.csv", "0.1,0.2\n0.5,NaN\n");
  expect_error((dir / "nan.csv").string(), "nan.csv: row 2, column 2: value 'NaN' is not finite");
  write(dir / "truth.csv", "0,1\n1,0\n");
  expect_error(x + " -e correlation --truth " + (dir / "truth.csv").string(),
               "truth.csv: 2 rows x 2 columns: expected 8 x 8");
  expect_error(x + " -e magic", "unknown estimator 'magic'");
  // The identity model regresses x itself: values outside (0, 1) are fine there.
  const auto r = cli("estimate " + (dir / "outside.csv").string() + " -e correlation --nonlinearity identity -o " +
                         (dir / "ok").string(),
                     dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(ModelVariants, ConfigKeysParseAndValidate) {
  const fs::path dir = scratch();
  write(dir / "A.csv", "0,0.5,0\n-0.3,0,0\n0,0,0.2\n");
  write(dir / "bad.csv", "0,0.5\n-0.3,0\n0,0\n");
  const auto config = [&](const std::string& model, const std::string& estimators = "use = [\"granger\"]") {
    return "[model]\n" + model + "\ntimesteps = 100\n[estimators]\n" + estimators + "\n";
  };
  auto c = cs::parse_config(config("connectivity_file = \"A.csv\"\nnonlinearity = \"identity\""),
                            (dir / "s.toml").string());
  EXPECT_EQ(c.axes.n_neurons, std::vector<int>{3});
  EXPECT_EQ(c.model.connectivity, (std::vector<double>{0, 0.5, 0, -0.3, 0, 0, 0, 0, 0.2}));
  EXPECT_EQ(c.model.nonlinearity, cs::Nonlinearity::identity);
  const auto error = [&](const std::string& text) {
    try {
      cs::parse_config(text, (dir / "s.toml").string());
    } catch (const cs::InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_HAS(error(config("connectivity_file = \"bad.csv\"")), "holds 3 rows x 2 columns: expected a square n x n matrix");
  EXPECT_HAS(error(config("connectivity_file = \"A.csv\"\nn_neurons = 4")),
             "key 'model.n_neurons' has value 4: must be 3 (the size of model.connectivity_file) or left out");
  EXPECT_HAS(error(config("connectivity_file = \"missing.csv\"")), "key 'model.connectivity_file' has value \"missing.csv\"");
  EXPECT_HAS(error(config("n_neurons = 4\nnonlinearity = \"relu\"")), "must be one of \"sigmoid\", \"identity\"");
  EXPECT_HAS(error(config("n_neurons = 4\np_inhibitory = 1.5")), "key 'model.p_inhibitory' has value 1.5");
  EXPECT_HAS(error(config("n_neurons = 4", "use = [\"granger\"]\n[estimators.granger]\nalpha = 1.0")),
             "key 'estimators.granger.alpha' has value 1.0: must be a significance level in (0, 1)");
  EXPECT_HAS(error(config("n_neurons = 4", "use = [\"granger\"]\n[estimators.granger]\ncorrection = \"holm\"")),
             "must be one of \"none\", \"bonferroni\", \"bh\"");
  EXPECT_HAS(error(config("n_neurons = 4", "use = [\"granger\"]\n[estimators.granger]\ntol = 1.0")),
             "unknown key; allowed keys in estimators.granger (method granger): method, alpha, correction");
  c = cs::parse_config(config("n_neurons = 4", "use = [\"g\", \"lasso\"]\n[estimators.g]\nmethod = \"granger_conditional\"\n"
                                               "alpha = 0.01\ncorrection = \"bh\"\n[estimators.lasso]\nalpha = 0.02"),
                       "s.toml");
  EXPECT_EQ(c.estimators[0].method, cs::EstimatorMethod::granger_conditional);
  EXPECT_EQ(c.estimators[0].level, 0.01);
  EXPECT_EQ(c.estimators[0].correction, cs::Correction::bh);
  EXPECT_EQ(c.estimators[1].alpha, 0.02);  // lasso's alpha stays its penalty
  EXPECT_EQ(c.estimators[1].level, 0.05);
}

TEST(ModelVariants, InhibitorySignsComeFromTheirOwnStream) {
  bool empty = false;
  const MatrixXd plain = cs::generate_connectivity(7, 40, 0.2, empty);
  const MatrixXd none = cs::generate_connectivity(7, 40, 0.2, empty, 0.0);
  EXPECT_EQ(plain, none);  // p_inhibitory = 0 draws nothing: existing networks are unchanged
  const MatrixXd signed_a = cs::generate_connectivity(7, 40, 0.2, empty, 0.3);
  EXPECT_TRUE(((signed_a.array() != 0) == (plain.array() != 0)).all());  // same wiring
  int64_t negative = 0, connections = 0;
  for (Eigen::Index i = 0; i < signed_a.size(); ++i) {
    connections += signed_a(i) != 0;
    negative += signed_a(i) < 0;
  }
  const double share = static_cast<double>(negative) / static_cast<double>(connections);
  EXPECT_NEAR(share, 0.3, 4 * std::sqrt(0.3 * 0.7 / static_cast<double>(connections)));
  EXPECT_NEAR(cs::largest_singular_value(signed_a), 1 / 1.01, 1e-12);
}

TEST(ModelVariants, IdentityModelIsTheLinearVar) {
  cs::NetworkTask task;
  task.seed = 3;
  task.n_neurons = 5;
  task.timesteps = 300;
  task.eta = 1.0;
  bool empty = false;
  const MatrixXd A = cs::generate_connectivity(task.seed, 5, 0.3, empty, 0.5);
  MatrixXd X, Z, Xs, Zs;
  cs::simulate_trajectory(task, A, X, Z, cs::Nonlinearity::identity);
  cs::simulate_trajectory(task, A, Xs, Zs, cs::Nonlinearity::sigmoid);
  EXPECT_EQ(Z, Zs);  // the same random numbers, only the nonlinearity differs
  // x[t+1] - A x[t] - eta z[t+1] is the noise, the same that the sigmoid model passes through sigmoid.
  for (Eigen::Index t = 0; t + 1 < X.cols(); ++t) {
    const Eigen::VectorXd noise = X.col(t + 1) - A * X.col(t) - Z.col(t + 1);
    const Eigen::VectorXd logit = (Xs.col(t + 1).array() / (1 - Xs.col(t + 1).array())).log().matrix();
    EXPECT_LT((noise - (logit - A * Xs.col(t) - Z.col(t + 1))).cwiseAbs().maxCoeff(), 1e-9) << t;
  }
  // The streamed Gram regresses x itself: its "logit" slot equals its x[t+1] slot.
  const cs::NetworkGrams grams = cs::simulate_network(task, A, cs::Nonlinearity::identity);
  EXPECT_LT((grams.all.x_logit(5) - grams.all.x_next(5)).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_EQ(grams.all.saturated_logits, 0);
  const cs::Gram reference = cs::gram_from_trajectories(X, Z, false, cs::Nonlinearity::identity);
  EXPECT_LT((grams.all.wu - reference.wu).cwiseAbs().maxCoeff(), 1e-9 * reference.wu.cwiseAbs().maxCoeff());
}

TEST(ModelVariants, CharactersTomlppMishandlesAreRefusedUpFront) {
  // toml++ 3.3 has undefined behaviour on U+00A1..U+049B and U+FB26..U+FEFE (fuzzing found them in
  // keys, bare values, strings and after escapes): refused with the line and a \u escape to use.
  // Other non-ASCII text, and the escapes themselves, are fine.
  const std::string tail = "[model]\nn_neurons = 4\ntimesteps = 100\n[estimators]\nuse = [\"granger\"]\n";
  EXPECT_EQ(cs::parse_config("name = \"M\\u00FCller \u20ac \u65e5\"  # \u2192 comment\n" + tail, "s.toml").name,
            "M\u00fcller \u20ac \u65e5");
  try {
    cs::parse_config("description = \"ok\"\nname = \"M\u00fcller\"\n" + tail, "s.toml");
    ADD_FAILURE() << "expected an InputError";
  } catch (const cs::InputError& e) {
    EXPECT_HAS(std::string(e.what()), "s.toml:2: character U+00FC is not supported in configs");
    EXPECT_HAS(std::string(e.what()), "write it as \\u00FC");
  }
  for (const auto& entry : fs::directory_iterator(source_dir / "tests/fuzz/regressions")) {
    const std::string name = entry.path().filename().string();
    if (name.find("unreachable") == std::string::npos) continue;
    try {
      cs::parse_config(slurp(entry.path()), name);
      ADD_FAILURE() << "expected an InputError for " << name;
    } catch (const cs::InputError& e) {
      EXPECT_HAS(std::string(e.what()), "is not supported in configs (toml++ 3.3 mishandles");
    }
  }
}

TEST(ModelVariants, SweepRunsCarryTheScoresThatApplyAndRocWhenAsked) {
  const fs::path dir = scratch();
  write(dir / "A.csv", "0,0.4,0,0\n0,0,0.4,0\n0,0,0,0.4\n-0.4,0,0,0\n");
  const cs::SweepConfig config = cs::parse_config(
      "[model]\nconnectivity_file = \"A.csv\"\nnonlinearity = \"identity\"\ntimesteps = 3000\neta = 1.0\n"
      "[seeds]\nlist = [4, 5]\n[estimators]\nuse = [\"granger\", \"iv\", \"correlation\"]\n[scores]\nroc_seeds = [5]\n",
      (dir / "sweep.toml").string());
  const cs::SweepGrid grid = cs::expand_grid(config);
  cs::PhaseTimes times;
  std::vector<cs::NetworkResult> results;
  for (const cs::NetworkTask& task : grid.networks) results.push_back(cs::run_cpu_network(task, grid, times));
  for (const cs::NetworkResult& r : results) {
    const uint64_t seed = grid.networks[r.network_index].seed;
    ASSERT_EQ(r.runs.size(), 3u);
    EXPECT_EQ(r.runs[0].scored, 0b01111u);  // granger: corr, auc, tpr, fpr
    EXPECT_EQ(r.runs[1].scored, 0b11111u);  // iv: and first_stage_f
    EXPECT_EQ(r.runs[2].scored, 0b00011u);  // correlation: no decision rule
    EXPECT_EQ(r.runs[0].roc.empty(), seed != 5);
    // The user's A (4 connections, one inhibitory) is recovered by the linear model's Granger test.
    EXPECT_EQ(r.runs[0].score[cs::score_tpr], 1.0) << seed;
    EXPECT_GT(r.runs[1].score[cs::score_first_stage_f], 100.0) << seed;
  }
  const std::string roc = cs::roc_csv(grid, results);
  EXPECT_HAS(roc, "1,5,4,3000,0.1,1.0,1.0,4,granger,granger,0,0.0,0.0,");
  EXPECT_EQ(std::count(roc.begin(), roc.end(), '\n'), 1 + static_cast<long>(results[1].runs[0].roc.size() +
                                                                              results[1].runs[1].roc.size() +
                                                                              results[1].runs[2].roc.size()));
}
