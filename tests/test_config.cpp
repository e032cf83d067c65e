// Config parsing: the accepted forms, the defaults, the example configs, and every error message (which
// must name source:line, the key, the value as written and what is allowed).
#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "causalsweep/config.hpp"

namespace causalsweep {
namespace {

namespace fs = std::filesystem;

const fs::path kSourceDir = CAUSALSWEEP_SOURCE_DIR;

// Joins lines with '\n', so line i + 1 of the TOML is element i: error lines can be read off the test.
std::string lines(std::initializer_list<std::string_view> items) {
  std::string text;
  for (const auto item : items) text.append(item).append("\n");
  return text;
}

// A valid config: [model] on lines 1-3, [estimators] on lines 4-5; tests append from line 6 on.
std::string base(std::initializer_list<std::string_view> more = {}) {
  std::string text = lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"correlation\"]"});
  for (const auto item : more) text.append(item).append("\n");
  return text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Parses `text` as test.toml and returns the InputError's message ("" if it parsed).
std::string error_of(const std::string& text) {
  try {
    parse_config(text, "test.toml");
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

// Expects the parse to fail with a message containing every fragment.
void expect_error(const std::string& text, std::initializer_list<std::string_view> fragments) {
  const std::string message = error_of(text);
  ASSERT_FALSE(message.empty()) << "expected an InputError for:\n" << text;
  for (const auto fragment : fragments)
    EXPECT_NE(message.find(fragment), std::string::npos) << "missing '" << fragment << "' in: " << message;
}

TEST(Config, ToString) {
  EXPECT_EQ(to_string(EstimatorMethod::correlation), "correlation");
  EXPECT_EQ(to_string(EstimatorMethod::perturbation), "perturbation");
  EXPECT_EQ(to_string(EstimatorMethod::ols), "ols");
  EXPECT_EQ(to_string(EstimatorMethod::lasso), "lasso");
  EXPECT_EQ(to_string(EstimatorMethod::iv), "iv");
  EXPECT_EQ(to_string(BackendKind::auto_select), "auto");
  EXPECT_EQ(to_string(BackendKind::cpu), "cpu");
  EXPECT_EQ(to_string(BackendKind::cuda), "cuda");
}

TEST(Config, DefaultConfig) {
  const auto config = parse_config(default_config_toml(), "<embedded default>");
  EXPECT_EQ(config.name, "default");
  EXPECT_FALSE(config.description.empty());
  EXPECT_EQ(config.source_name, "<embedded default>");
  EXPECT_EQ(config.source_text, default_config_toml());
  EXPECT_EQ(config.axes.n_neurons, std::vector<int>{40});
  EXPECT_EQ(config.axes.timesteps, std::vector<int>{20000});
  EXPECT_EQ(config.axes.p_connect, std::vector<double>{0.1});
  EXPECT_EQ(config.axes.eta, std::vector<double>{2.0});
  EXPECT_EQ(config.axes.observed_ratio, (std::vector<double>{1.0, 0.8, 0.6, 0.4, 0.2}));
  EXPECT_FALSE(config.axes.perturb);
  ASSERT_EQ(config.axes.seeds.size(), 50u);
  EXPECT_EQ(config.axes.seeds.front(), 0u);
  EXPECT_EQ(config.axes.seeds.back(), 49u);
  ASSERT_EQ(config.estimators.size(), 4u);
  const std::vector<std::pair<std::string, EstimatorMethod>> expected = {{"correlation", EstimatorMethod::correlation},
                                                                         {"lasso", EstimatorMethod::lasso},
                                                                         {"ols", EstimatorMethod::ols},
                                                                         {"iv", EstimatorMethod::iv}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(config.estimators[i].label, expected[i].first);
    EXPECT_EQ(config.estimators[i].method, expected[i].second);
    EXPECT_FALSE(config.estimators[i].intercept);
  }
  EXPECT_EQ(config.run.backend, BackendKind::auto_select);
  EXPECT_EQ(config.run.threads, 0);
  EXPECT_EQ(config.run.batch_size, 0);
  EXPECT_TRUE(config.run.output_dir.empty());
}

TEST(Config, RunDevicesListsCudaDeviceIds) {
  EXPECT_TRUE(parse_config(base(), "test.toml").run.devices.empty());  // every visible device
  EXPECT_EQ(parse_config(base({"[run]", "devices = [1, 0]"}), "test.toml").run.devices, (std::vector<int>{1, 0}));
  expect_error(base({"[run]", "devices = []"}),
               {"test.toml:7: key 'run.devices' has value []: must be a non-empty array of unique CUDA device ids"});
  expect_error(base({"[run]", "devices = 0"}), {"test.toml:7: key 'run.devices'", "(got an integer)"});
  expect_error(base({"[run]", "devices = [0, 0]"}), {"test.toml:7: key 'run.devices[1]' has value 0: must be unique"});
  expect_error(base({"[run]", "devices = [-1]"}),
               {"test.toml:7: key 'run.devices[0]' has value -1: must be a CUDA device id in [0, 1023]"});
}

TEST(Config, DefaultFileIsByteIdenticalToEmbedded) {
  EXPECT_EQ(read_file(kSourceDir / "configs" / "default.toml"), default_config_toml());
}

TEST(Config, EveryExampleConfigParses) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(kSourceDir / "configs")) {
    if (entry.path().extension() != ".toml") continue;
    SCOPED_TRACE(entry.path().string());
    SweepConfig config;
    ASSERT_NO_THROW(config = load_config(entry.path()));
    EXPECT_EQ(config.name, entry.path().stem().string());  // each example's name matches its file
    EXPECT_FALSE(config.description.empty());
    ++count;
  }
  EXPECT_GE(count, 6u);
}

SweepConfig load_example(const std::string& stem) { return load_config(kSourceDir / "configs" / (stem + ".toml")); }

TEST(Config, TutorialConfigsHoldTheirSweeps) {
  const auto t1 = load_example("tutorial1_perturbation");
  EXPECT_EQ(t1.axes.n_neurons, std::vector<int>{6});
  EXPECT_EQ(t1.axes.timesteps, std::vector<int>{5000});
  EXPECT_TRUE(t1.axes.perturb);
  EXPECT_EQ(t1.axes.seeds.size(), 20u);
  ASSERT_EQ(t1.estimators.size(), 2u);
  EXPECT_EQ(t1.estimators[0].method, EstimatorMethod::perturbation);
  EXPECT_EQ(t1.estimators[1].method, EstimatorMethod::correlation);

  const auto t2 = load_example("tutorial2_correlation");
  EXPECT_EQ(t2.axes.n_neurons, (std::vector<int>{6, 20, 50, 100}));
  EXPECT_EQ(t2.axes.timesteps, std::vector<int>{5000});
  EXPECT_EQ(t2.axes.seeds.size(), 20u);
  ASSERT_EQ(t2.estimators.size(), 1u);
  EXPECT_EQ(t2.estimators[0].method, EstimatorMethod::correlation);

  const auto t3 = load_example("tutorial3_regression");
  EXPECT_EQ(t3.axes.n_neurons, std::vector<int>{50});
  EXPECT_EQ(t3.axes.eta, std::vector<double>{0.0});
  EXPECT_EQ(t3.axes.observed_ratio, (std::vector<double>{0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(t3.axes.seeds.size(), 20u);
  ASSERT_EQ(t3.estimators.size(), 3u);
  EXPECT_EQ(t3.estimators[0].method, EstimatorMethod::lasso);
  EXPECT_EQ(t3.estimators[1].method, EstimatorMethod::ols);
  EXPECT_EQ(t3.estimators[2].method, EstimatorMethod::correlation);

  const auto t4 = load_example("tutorial4_observed_ratio");
  EXPECT_EQ(t4.axes.n_neurons, std::vector<int>{40});
  EXPECT_EQ(t4.axes.timesteps, std::vector<int>{20000});
  EXPECT_EQ(t4.axes.eta, std::vector<double>{2.0});
  EXPECT_EQ(t4.axes.observed_ratio, (std::vector<double>{1.0, 0.8, 0.6, 0.4, 0.2}));
  EXPECT_EQ(t4.axes.seeds.size(), 100u);
  ASSERT_EQ(t4.estimators.size(), 5u);
  EXPECT_EQ(t4.estimators[3].method, EstimatorMethod::iv);
  EXPECT_EQ(t4.estimators[4].label, "lasso_intercept");
  EXPECT_EQ(t4.estimators[4].method, EstimatorMethod::lasso);
  EXPECT_TRUE(t4.estimators[4].intercept);
  EXPECT_FALSE(t4.estimators[1].intercept);

  const auto t4s = load_example("tutorial4_instrument_strength");
  EXPECT_EQ(t4s.axes.eta, (std::vector<double>{0.1, 0.2, 0.5, 1.0, 2.0, 5.0}));
  EXPECT_EQ(t4s.axes.observed_ratio, (std::vector<double>{1.0, 0.2}));
  EXPECT_EQ(t4s.axes.seeds.size(), 20u);
  ASSERT_EQ(t4s.estimators.size(), 2u);
  EXPECT_EQ(t4s.estimators[0].method, EstimatorMethod::iv);
  EXPECT_EQ(t4s.estimators[1].method, EstimatorMethod::lasso);
}

TEST(Config, MinimalConfigFillsDefaults) {
  const auto config = parse_config(base(), "sweeps/my_sweep.toml");
  EXPECT_EQ(config.name, "my_sweep");  // the source's stem
  EXPECT_EQ(config.description, "");
  EXPECT_EQ(config.source_name, "sweeps/my_sweep.toml");
  EXPECT_EQ(config.axes.n_neurons, std::vector<int>{4});
  EXPECT_EQ(config.axes.timesteps, std::vector<int>{100});
  EXPECT_EQ(config.axes.p_connect, std::vector<double>{0.1});
  EXPECT_EQ(config.axes.eta, std::vector<double>{0.0});
  EXPECT_EQ(config.axes.observed_ratio, std::vector<double>{1.0});
  EXPECT_FALSE(config.axes.perturb);
  EXPECT_EQ(config.axes.seeds, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_EQ(config.estimators.size(), 1u);
  const EstimatorSpec defaults;
  EXPECT_EQ(config.estimators[0].label, "correlation");
  EXPECT_EQ(config.estimators[0].intercept, defaults.intercept);
  EXPECT_EQ(config.estimators[0].alpha, defaults.alpha);
  EXPECT_EQ(config.estimators[0].tol, defaults.tol);
  EXPECT_EQ(config.estimators[0].max_iter, defaults.max_iter);
  EXPECT_EQ(config.run.backend, BackendKind::auto_select);
  EXPECT_EQ(config.run.threads, 0);
  EXPECT_EQ(config.run.batch_size, 0);
  EXPECT_EQ(config.run.output_dir, "");
}

TEST(Config, NameAndDescription) {
  const auto config = parse_config(lines({"name = \"mine\"", "description = \"a test\""}) + base(), "x/other.toml");
  EXPECT_EQ(config.name, "mine");
  EXPECT_EQ(config.description, "a test");
}

TEST(Config, AxisScalarArrayAndIntegerForFloat) {
  const auto config = parse_config(
      lines({"[model]", "n_neurons = [4, 8]", "timesteps = [100, 50]", "p_connect = 1", "eta = [0, 0.5, 2]",
             "observed_ratio = [1, 0.5]", "perturb = true", "[estimators]", "use = [\"correlation\"]"}),
      "test.toml");
  EXPECT_EQ(config.axes.n_neurons, (std::vector<int>{4, 8}));
  EXPECT_EQ(config.axes.timesteps, (std::vector<int>{100, 50}));  // order as given
  EXPECT_EQ(config.axes.p_connect, std::vector<double>{1.0});
  EXPECT_EQ(config.axes.eta, (std::vector<double>{0.0, 0.5, 2.0}));
  EXPECT_EQ(config.axes.observed_ratio, (std::vector<double>{1.0, 0.5}));
  EXPECT_TRUE(config.axes.perturb);
}

TEST(Config, AxisRangeTables) {
  const auto config = parse_config(
      lines({"[model]", "n_neurons = { start = 10, stop = 1000, num = 3, scale = \"log\" }",
             "timesteps = { start = 100, stop = 103, num = 4 }", "p_connect = { start = 0.1, stop = 0.1, num = 1 }",
             "eta = { start = 0.1, stop = 10, num = 3, scale = \"log\" }",
             "observed_ratio = { start = 0.2, stop = 1.0, num = 5, scale = \"linear\" }", "[estimators]",
             "use = [\"correlation\"]"}),
      "test.toml");
  EXPECT_EQ(config.axes.n_neurons, (std::vector<int>{10, 100, 1000}));
  EXPECT_EQ(config.axes.timesteps, (std::vector<int>{100, 101, 102, 103}));
  EXPECT_EQ(config.axes.p_connect, std::vector<double>{0.1});
  EXPECT_EQ(config.axes.eta, (std::vector<double>{0.1, 1.0, 10.0}));
  // Points come out as written by hand: 0.6, not 0.6000000000000001.
  EXPECT_EQ(config.axes.observed_ratio, (std::vector<double>{0.2, 0.4, 0.6, 0.8, 1.0}));

  // Integer axes round interior points to the nearest integer; a descending range stays descending.
  const auto rounded =
      parse_config(lines({"[model]", "n_neurons = { start = 10, stop = 1, num = 4 }",
                          "timesteps = { start = 3, stop = 10, num = 3 }", "[estimators]", "use = [\"correlation\"]"}),
                   "test.toml");
  EXPECT_EQ(rounded.axes.n_neurons, (std::vector<int>{10, 7, 4, 1}));
  EXPECT_EQ(rounded.axes.timesteps, (std::vector<int>{3, 7, 10}));  // 6.5 rounds away from zero
}

TEST(Config, SeedForms) {
  EXPECT_EQ(parse_config(base({"[seeds]", "count = 3", "start = 5"}), "t.toml").axes.seeds,
            (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_EQ(parse_config(base({"[seeds]", "count = 2"}), "t.toml").axes.seeds, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(parse_config(base({"[seeds]", "list = [3, 7, 11]"}), "t.toml").axes.seeds,
            (std::vector<uint64_t>{3, 7, 11}));
  EXPECT_EQ(parse_config(base({"[seeds]"}), "t.toml").axes.seeds.size(), 10u);
}

TEST(Config, EstimatorOptionsAndVariants) {
  const auto config = parse_config(
      lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]",
             "use = [\"lasso\", \"ols\", \"lasso_intercept\", \"iv\", \"iv-2\"]", "[estimators.lasso]", "alpha = 0",
             "tol = 1e-6", "max_iter = 50", "[estimators.ols]", "intercept = true", "[estimators.lasso_intercept]",
             "method = \"lasso\"", "intercept = true", "alpha = 1", "[estimators.iv-2]", "method = \"iv\""}),
      "test.toml");
  ASSERT_EQ(config.estimators.size(), 5u);
  const auto& lasso = config.estimators[0];
  EXPECT_EQ(lasso.method, EstimatorMethod::lasso);
  EXPECT_EQ(lasso.alpha, 0.0);
  EXPECT_EQ(lasso.tol, 1e-6);
  EXPECT_EQ(lasso.max_iter, 50);
  EXPECT_FALSE(lasso.intercept);
  EXPECT_EQ(config.estimators[1].method, EstimatorMethod::ols);
  EXPECT_TRUE(config.estimators[1].intercept);
  const auto& variant = config.estimators[2];
  EXPECT_EQ(variant.label, "lasso_intercept");
  EXPECT_EQ(variant.method, EstimatorMethod::lasso);
  EXPECT_TRUE(variant.intercept);
  EXPECT_EQ(variant.alpha, 1.0);
  EXPECT_EQ(variant.tol, 1e-4);
  EXPECT_EQ(config.estimators[3].method, EstimatorMethod::iv);
  EXPECT_EQ(config.estimators[4].label, "iv-2");
  EXPECT_EQ(config.estimators[4].method, EstimatorMethod::iv);
}

TEST(Config, PerturbationWithPerturbMode) {
  const auto config = parse_config(lines({"[model]", "n_neurons = 4", "timesteps = 100", "perturb = true",
                                          "[estimators]", "use = [\"perturbation\", \"correlation\"]"}),
                                   "test.toml");
  EXPECT_EQ(config.estimators[0].method, EstimatorMethod::perturbation);
}

TEST(Config, RunOptions) {
  const auto config = parse_config(
      base({"[run]", "backend = \"cuda\"", "threads = 8", "batch_size = 64", "output = \"results/t4\""}), "test.toml");
  EXPECT_EQ(config.run.backend, BackendKind::cuda);
  EXPECT_EQ(config.run.threads, 8);
  EXPECT_EQ(config.run.batch_size, 64);
  EXPECT_EQ(config.run.output_dir, "results/t4");
  EXPECT_EQ(parse_config(base({"[run]", "backend = \"cpu\""}), "t.toml").run.backend, BackendKind::cpu);
  EXPECT_EQ(parse_config(base({"[run]", "backend = \"auto\""}), "t.toml").run.backend, BackendKind::auto_select);
}

TEST(Config, ToJsonIsTheResolvedConfig) {
  const auto config = parse_config(
      lines({"description = \"d\"", "[model]", "n_neurons = 4", "timesteps = 100", "[seeds]", "list = [3, 7]",
             "[estimators]", "use = [\"correlation\", \"ols\", \"lasso\"]", "[run]", "threads = 2"}),
      "dir/sweep.toml");
  const auto json = to_json(config);
  EXPECT_EQ(json["name"], "sweep");
  EXPECT_EQ(json["description"], "d");
  EXPECT_EQ(json["source_name"], "dir/sweep.toml");
  EXPECT_EQ(json["model"]["n_neurons"], nlohmann::json::array({4}));
  EXPECT_EQ(json["model"]["timesteps"], nlohmann::json::array({100}));
  EXPECT_EQ(json["model"]["p_connect"], nlohmann::json::array({0.1}));
  EXPECT_EQ(json["model"]["eta"], nlohmann::json::array({0.0}));
  EXPECT_EQ(json["model"]["observed_ratio"], nlohmann::json::array({1.0}));
  EXPECT_EQ(json["model"]["perturb"], false);
  EXPECT_EQ(json["seeds"], nlohmann::json::array({3, 7}));
  ASSERT_EQ(json["estimators"].size(), 3u);
  EXPECT_EQ(json["estimators"][0], (nlohmann::json{{"label", "correlation"}, {"method", "correlation"}}));
  EXPECT_EQ(json["estimators"][1], (nlohmann::json{{"label", "ols"}, {"method", "ols"}, {"intercept", false}, {"alpha", 0.05}, {"correction", "none"}}));
  EXPECT_EQ(json["estimators"][2], (nlohmann::json{{"label", "lasso"},
                                                   {"method", "lasso"},
                                                   {"intercept", false},
                                                   {"alpha", 0.01},
                                                   {"tol", 1e-4},
                                                   {"max_iter", 1000},
                                                   {"solver", "active_set"}}));
  EXPECT_EQ(json["run"], (nlohmann::json{
                             {"backend", "auto"}, {"threads", 2}, {"batch_size", 0}, {"devices", nlohmann::json::array()},
                             {"output", ""}}));
  EXPECT_EQ(json["model"]["family"], "rate");
}

TEST(Config, LoadConfigFromFile) {
  // A fresh folder per run, so concurrent test runs do not share files.
  const fs::path dir =
      fs::temp_directory_path() / ("causalsweep_test_config_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const fs::path file = dir / "from_file.toml";
  std::ofstream(file) << base();
  const auto config = load_config(file);
  EXPECT_EQ(config.name, "from_file");
  EXPECT_EQ(config.source_name, file.string());
  EXPECT_EQ(config.source_text, base());

  // Errors in a file name the file.
  std::ofstream(file) << base({"[run]", "backend = \"gpu\""});
  try {
    load_config(file);
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()), file.string() +
                                             ":7: key 'run.backend' has value \"gpu\": must be one of "
                                             "\"auto\", \"cpu\", \"cuda\"");
  }

  const auto expect_unreadable = [](const fs::path& path, std::string_view reason) {
    try {
      load_config(path);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& error) {
      EXPECT_EQ(std::string(error.what()), "cannot read config '" + path.string() + "': " + std::string(reason));
    }
  };
  expect_unreadable(dir / "missing.toml", "No such file or directory");
  expect_unreadable(dir, "it is a directory");
  fs::remove_all(dir);
}

// ---- errors ----

TEST(Config, SyntaxErrorNamesLineAndDescription) {
  const auto message = error_of(lines({"[model]", "n_neurons = 4", "timesteps = [1,", "[estimators]"}));
  EXPECT_EQ(message.rfind("test.toml:4: TOML syntax error: ", 0), 0u) << message;
  EXPECT_GT(message.size(), std::string("test.toml:4: TOML syntax error: ").size());
  expect_error(lines({"[model]", "n_neurons = 4", "n_neurons = 5"}), {"test.toml:3: TOML syntax error: ", "n_neurons"});
}

TEST(Config, ExactMessageForm) {
  EXPECT_EQ(error_of(base({"[model]"})).substr(0, 12), "test.toml:6:");  // redefined table: syntax error
  EXPECT_EQ(error_of(lines({"[model]", "n_neurons = 4", "timesteps = 100", "observed_ratio = 1.5", "[estimators]",
                            "use = [\"correlation\"]"})),
            "test.toml:4: key 'model.observed_ratio' has value 1.5: must be a number in (0, 1]");
}

TEST(Config, UnknownKeysListTheAllowedOnes) {
  expect_error(base({"nme = \"x\""}),  // a top-level key after [estimators] belongs to it
               {"test.toml:6: key 'estimators.nme' has value \"x\": unknown key; allowed keys in estimators: use"});
  expect_error("nme = \"x\"\n" + base(),
               {"test.toml:1: key 'nme' has value \"x\": unknown key; allowed top-level keys: name, description, "
                "model, seeds, estimators, scores, run"});
  expect_error(lines({"[model]", "n_neuron = 4"}),
               {"test.toml:2: key 'model.n_neuron' has value 4: unknown key; allowed keys in model: n_neurons, "
                "timesteps, p_connect, eta, observed_ratio, perturb"});
  expect_error(base({"[seeds]", "first = 1"}),
               {"test.toml:7: key 'seeds.first' has value 1: unknown key; allowed keys in seeds: count, start, list"});
  expect_error(base({"[run]", "gpu = true"}), {"test.toml:7: key 'run.gpu' has value true: unknown key; allowed keys "
                                               "in run: backend, threads, batch_size, output"});
  expect_error(base({"[runs]"}), {"test.toml:6: key 'runs' has value a table: unknown key; allowed top-level keys"});
  expect_error(lines({"[model]", "n_neurons = { start = 1, stop = 4, count = 4 }"}),
               {"test.toml:2: key 'model.n_neurons.count' has value 4: unknown key; allowed keys in model.n_neurons: "
                "start, stop, num, scale"});
  expect_error(base({"[estimators.correlation]", "alpha = 0.1"}),
               {"test.toml:7: key 'estimators.correlation.alpha' has value 0.1: unknown key; allowed keys in "
                "estimators.correlation (method correlation): method"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"ols\"]",
                      "[estimators.ols]", "tol = 0.1"}),
               {"test.toml:7: key 'estimators.ols.tol' has value 0.1: unknown key; allowed keys in estimators.ols "
                "(method ols): method, intercept, alpha, correction"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"lasso\"]",
                      "[estimators.lasso]", "lambda = 0.1"}),
               {"test.toml:7: key 'estimators.lasso.lambda' has value 0.1: unknown key; allowed keys in "
                "estimators.lasso (method lasso): method, intercept, alpha, tol, max_iter"});
}

TEST(Config, WrongTypesSayExpectedAndGiven) {
  expect_error(lines({"[model]", "n_neurons = \"forty\""}),
               {"test.toml:2: key 'model.n_neurons' has value \"forty\": must be an integer in [1, 20000], an array "
                "of such, or a range table",
                "(got a string)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "eta = true"}),
               {"test.toml:4: key 'model.eta' has value true: must be a finite number >= 0", "(got a boolean)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = [100, \"200\"]"}),
               {"test.toml:3: key 'model.timesteps[1]' has value \"200\": must be an integer in [3, 1000000000] (got "
                "a string)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "p_connect = [[0.1]]"}),
               {"test.toml:4: key 'model.p_connect[0]' has value [0.1]: must be a number in [0, 1] (got an array)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "perturb = 1"}),
               {"test.toml:4: key 'model.perturb' has value 1: must be true or false (got an integer)"});
  expect_error("model = 3\n", {"test.toml:1: key 'model' has value 3: must be a table [model] (got an integer)"});
  expect_error("name = 3\n" + base(),
               {"test.toml:1: key 'name' has value 3: must be a non-empty string", "(got an integer)"});
  expect_error("description = [\"a\"]\n" + base(),
               {"test.toml:1: key 'description' has value [\"a\"]: must be a string (got an array)"});
  expect_error(base({"[seeds]", "count = \"10\""}),
               {"test.toml:7: key 'seeds.count' has value \"10\": must be an integer in [1, 1000000] (got a string)"});
  expect_error(base({"[seeds]", "list = 3"}),
               {"test.toml:7: key 'seeds.list' has value 3: must be a non-empty array of unique integers >= 0 (got an "
                "integer)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = \"lasso\""}),
               {"test.toml:5: key 'estimators.use' has value \"lasso\": must be a non-empty array of unique estimator "
                "labels",
                "(got a string)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"ols\", 3]"}),
               {"test.toml:5: key 'estimators.use[1]' has value 3: must be a label (string) (got an integer)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"ols\"]", "ols = 1"}),
               {"test.toml:6: key 'estimators.ols' has value 1: must be a table of options [estimators.ols] (got an "
                "integer)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"ols\"]",
                      "[estimators.ols]", "intercept = \"yes\""}),
               {"test.toml:7: key 'estimators.ols.intercept' has value \"yes\": must be true or false (got a string)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"x\"]", "[estimators.x]",
                      "method = 1"}),
               {"test.toml:7: key 'estimators.x.method' has value 1: must be one of correlation, perturbation, ols, "
                "lasso, iv, granger, granger_conditional (got an integer)"});
  expect_error(
      base({"[run]", "backend = 1"}),
      {"test.toml:7: key 'run.backend' has value 1: must be one of \"auto\", \"cpu\", \"cuda\" (got an integer)"});
  expect_error(base({"[run]", "output = 5"}), {"test.toml:7: key 'run.output' has value 5: must be a non-empty path "
                                               "(string) (got an integer)"});
  expect_error(base({"run = \"fast\""}), {"test.toml:6: key 'estimators.run'"});  // after [estimators]: its key
  expect_error("run = \"fast\"\n" + base(),
               {"test.toml:1: key 'run' has value \"fast\": must be a table [run] (got a string)"});
}

TEST(Config, FloatsAreRejectedForIntegerKeys) {
  expect_error(
      lines({"[model]", "n_neurons = 40.5"}),
      {"test.toml:2: key 'model.n_neurons' has value 40.5: must be an integer in [1, 20000]", "(got a float)"});
  expect_error(
      lines({"[model]", "n_neurons = 40.0"}),
      {"test.toml:2: key 'model.n_neurons' has value 40.0: must be an integer in [1, 20000]", "(got a float)"});
  expect_error(lines({"[model]", "n_neurons = [4, 8.0]"}),
               {"test.toml:2: key 'model.n_neurons[1]' has value 8.0: must be an integer in [1, 20000] (got a float)"});
  expect_error(lines({"[model]", "n_neurons = { start = 4.0, stop = 8, num = 2 }"}),
               {"test.toml:2: key 'model.n_neurons.start' has value 4.0: must be an integer in [1, 20000] (got a "
                "float)"});
  expect_error(base({"[seeds]", "count = 1e1"}), {"test.toml:7: key 'seeds.count' has value 1e1: must be an integer "
                                                  "in [1, 1000000] (got a float)"});
  expect_error(base({"[run]", "threads = 2.0"}),
               {"test.toml:7: key 'run.threads' has value 2.0: must be an integer in [0, 4096] (0: all cores) (got a "
                "float)"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"lasso\"]",
                      "[estimators.lasso]", "max_iter = 100.0"}),
               {"test.toml:7: key 'estimators.lasso.max_iter' has value 100.0: must be an integer in [1, 2147483647] "
                "(got a float)"});
}

TEST(Config, EmptyArrays) {
  expect_error(lines({"[model]", "n_neurons = []"}),
               {"test.toml:2: key 'model.n_neurons' has value []: must not be empty: give an integer in [1, 20000]"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "observed_ratio = [ ]"}),
               {"test.toml:4: key 'model.observed_ratio' has value [ ]: must not be empty"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = []"}),
               {"test.toml:5: key 'estimators.use' has value []: must be a non-empty array of unique estimator "
                "labels",
                "(got an empty array)"});
  expect_error(base({"[seeds]", "list = []"}),
               {"test.toml:7: key 'seeds.list' has value []: must be a non-empty array of unique integers >= 0 (got an "
                "empty array)"});
}

TEST(Config, DuplicatesAreErrors) {
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "eta = [0, 0.5, 0.5]"}),
               {"test.toml:4: key 'model.eta[2]' has value 0.5: must be unique (same as model.eta[1])"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "eta = [1, 1.0]"}),
               {"test.toml:4: key 'model.eta[1]' has value 1.0: must be unique (same as model.eta[0])"});
  expect_error(lines({"[model]", "n_neurons = [4, 8, 4]"}),
               {"test.toml:2: key 'model.n_neurons[2]' has value 4: must be unique (same as model.n_neurons[0])"});
  expect_error(base({"[seeds]", "list = [1, 2, 1]"}),
               {"test.toml:7: key 'seeds.list[2]' has value 1: must be unique (same as seeds.list[0])"});
  expect_error(
      lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"iv\", \"ols\", \"iv\"]"}),
      {"test.toml:5: key 'estimators.use[2]' has value \"iv\": must be unique (same as estimators.use[0])"});
  // Multi-line arrays: the element's own line.
  expect_error(
      lines({"[model]", "n_neurons = 4", "timesteps = 100", "observed_ratio = [", "  1.0,", "  0.5,", "  0.5,", "]"}),
      {"test.toml:7: key 'model.observed_ratio[2]' has value 0.5: must be unique"});
}

TEST(Config, OutOfRangeValues) {
  struct Case {
    std::string_view line;  // line 4 of [model] after n_neurons and timesteps
    std::string_view message;
  };
  const Case cases[] = {
      {"observed_ratio = 0", "key 'model.observed_ratio' has value 0: must be a number in (0, 1]"},
      {"observed_ratio = [1.0, 1.01]", "key 'model.observed_ratio[1]' has value 1.01: must be a number in (0, 1]"},
      {"observed_ratio = -0.5", "key 'model.observed_ratio' has value -0.5: must be a number in (0, 1]"},
      {"p_connect = 1.5", "key 'model.p_connect' has value 1.5: must be a number in [0, 1]"},
      {"p_connect = -0.1", "key 'model.p_connect' has value -0.1: must be a number in [0, 1]"},
      {"p_connect = nan", "key 'model.p_connect' has value nan: must be a number in [0, 1]"},
      {"eta = -1", "key 'model.eta' has value -1: must be a finite number >= 0"},
      {"eta = inf", "key 'model.eta' has value inf: must be a finite number >= 0"},
      {"eta = [1, -1e-3]", "key 'model.eta[1]' has value -1e-3: must be a finite number >= 0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    EXPECT_EQ(error_of(lines({"[model]", "n_neurons = 4", "timesteps = 100", c.line})),
              "test.toml:4: " + std::string(c.message));
  }
  expect_error(lines({"[model]", "n_neurons = 0"}), {"test.toml:2: key 'model.n_neurons' has value 0: must be an "
                                                     "integer in [1, 20000]"});
  expect_error(lines({"[model]", "n_neurons = 20001"}),
               {"test.toml:2: key 'model.n_neurons' has value 20001: must be an integer in [1, 20000]"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 2"}),
               {"test.toml:3: key 'model.timesteps' has value 2: must be an integer in [3, 1000000000]"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 1_000_000_001"}),
               {"test.toml:3: key 'model.timesteps' has value 1_000_000_001: must be an integer in [3, 1000000000]"});
  expect_error(base({"[seeds]", "count = 0"}),
               {"test.toml:7: key 'seeds.count' has value 0: must be an integer in [1, 1000000]"});
  expect_error(base({"[seeds]", "start = -1"}),
               {"test.toml:7: key 'seeds.start' has value -1: must be an integer >= 0"});
  expect_error(base({"[seeds]", "list = [1, -2]"}),
               {"test.toml:7: key 'seeds.list[1]' has value -2: must be an integer >= 0"});
  expect_error(base({"[run]", "threads = -1"}), {"test.toml:7: key 'run.threads' has value -1: must be an integer in "
                                                 "[0, 4096] (0: all cores)"});
  expect_error(base({"[run]", "batch_size = -4"}),
               {"test.toml:7: key 'run.batch_size' has value -4: must be an integer in [0, 2147483647]"});
  expect_error(base({"[run]", "output = \"\""}),
               {"test.toml:7: key 'run.output' has value \"\": must be a non-empty path"});
  expect_error("name = \"a/b\"\n" + base(), {"test.toml:1: key 'name' has value \"a/b\": must be a non-empty string "
                                             "without '/'"});
  const auto lasso = [](std::string_view option) {
    return lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "use = [\"lasso\"]",
                  "[estimators.lasso]", option});
  };
  expect_error(lasso("alpha = -0.01"),
               {"test.toml:7: key 'estimators.lasso.alpha' has value -0.01: must be a finite number >= 0"});
  expect_error(lasso("tol = 0"), {"test.toml:7: key 'estimators.lasso.tol' has value 0: must be a finite number > 0"});
  expect_error(lasso("solver = \"newton\""),
               {"test.toml:7: key 'estimators.lasso.solver' has value \"newton\"", "active_set", "cyclic"});
  expect_error(lasso("max_iter = 0"),
               {"test.toml:7: key 'estimators.lasso.max_iter' has value 0: must be an integer in [1, 2147483647]"});
}

TEST(Config, RangeTableErrors) {
  const auto model = [](std::string_view line) { return lines({"[model]", "n_neurons = 4", "timesteps = 100", line}); };
  expect_error(model("eta = { start = 0, stop = 1 }"),
               {"test.toml:4: key 'model.eta.num' is missing: required, an integer in [1, 100000]"});
  expect_error(model("eta = { stop = 1, num = 3 }"),
               {"test.toml:4: key 'model.eta.start' is missing: required, a finite number >= 0"});
  expect_error(model("eta = { start = 0, stop = 1, num = 0 }"),
               {"test.toml:4: key 'model.eta.num' has value 0: must be an integer in [1, 100000]"});
  expect_error(model("eta = { start = 0, stop = 1, num = 3, scale = \"log\" }"),
               {"test.toml:4: key 'model.eta.start' has value 0: must be > 0 with scale = \"log\""});
  expect_error(model("eta = { start = 0, stop = 1, num = 3, scale = \"exp\" }"),
               {"test.toml:4: key 'model.eta.scale' has value \"exp\": must be \"linear\" or \"log\""});
  expect_error(model("eta = { start = 0, stop = 1, num = 1 }"),
               {"test.toml:4: key 'model.eta.num' has value 1: must be >= 2 when start != stop"});
  expect_error(model("eta = { start = 1, stop = 1, num = 3 }"),
               {"test.toml:4: key 'model.eta' has value { start = 1, stop = 1, num = 3 }: must give distinct points, "
                "but points 0 and 1 are both 1"});
  expect_error(model("observed_ratio = { start = 0.5, stop = 1.5, num = 3 }"),
               {"test.toml:4: key 'model.observed_ratio.stop' has value 1.5: must be a number in (0, 1]"});
  expect_error(lines({"[model]", "n_neurons = { start = 1, stop = 3, num = 5 }"}),
               {"test.toml:2: key 'model.n_neurons' has value { start = 1, stop = 3, num = 5 }: must give distinct "
                "points, but points 1 and 2 are both 2 after rounding to integers; use a smaller num"});
  // A block-table range reports the line of its header.
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "[model.eta]", "start = 1"}),
               {"test.toml:4: key 'model.eta.stop' is missing: required, a finite number >= 0"});
}

TEST(Config, EstimatorErrors) {
  const auto with = [](std::initializer_list<std::string_view> estimators, bool perturb = false) {
    std::string text =
        lines({"[model]", "n_neurons = 4", "timesteps = 100", perturb ? "perturb = true" : "perturb = false"});
    for (const auto line : estimators) text.append(line).append("\n");
    return text;
  };
  expect_error(with({"[estimators]", "use = [\"correlation\", \"lass\"]"}),
               {"test.toml:6: key 'estimators.use[1]' has value \"lass\": unknown estimator method; allowed: "
                "correlation, perturbation, ols, lasso, iv, granger, granger_conditional (or give [estimators.lass] a "
                "method key"});
  expect_error(with({"[estimators]", "use = [\"fancy\"]", "[estimators.fancy]", "method = \"grangr\""}),
               {"test.toml:8: key 'estimators.fancy.method' has value \"grangr\": unknown estimator method; allowed: "
                "correlation, perturbation, ols, lasso, iv, granger, granger_conditional"});
  expect_error(with({"[estimators]", "use = [\"fancy\"]", "[estimators.fancy]", "intercept = true"}),
               {"test.toml:6: key 'estimators.use[0]' has value \"fancy\": unknown estimator method"});
  expect_error(with({"[estimators]", "use = [\"lasso\"]", "[estimators.ols]", "intercept = true"}),
               {"test.toml:7: key 'estimators.ols' has value a table: unknown key; allowed keys in estimators: use and "
                "an options table per label in estimators.use (lasso)"});
  expect_error(with({"[estimators]", "use = [\"correlation\", \"perturbation\"]"}),
               {"test.toml:6: key 'estimators.use[1]' has value \"perturbation\": method perturbation needs Tutorial "
                "1's perturbation mode: set model.perturb = true"});
  expect_error(with({"[estimators]", "use = [\"p\"]", "[estimators.p]", "method = \"perturbation\""}),
               {"test.toml:8: key 'estimators.p.method' has value \"perturbation\": method perturbation needs",
                "set model.perturb = true"});
  expect_error(with({"[estimators]", "use = [\"my lasso\"]"}),
               {"test.toml:6: key 'estimators.use[0]' has value \"my lasso\": must be a non-empty label of letters, "
                "digits, '_' and '-'"});
  // A label's method key wins over the label's name (the contract), so this one is a lasso.
  EXPECT_EQ(parse_config(with({"[estimators]", "use = [\"ols\"]", "[estimators.ols]", "method = \"lasso\""}), "t.toml")
                .estimators[0]
                .method,
            EstimatorMethod::lasso);
}

TEST(Config, MissingRequiredKeys) {
  expect_error(lines({"[model]", "timesteps = 100", "[estimators]", "use = [\"iv\"]"}),
               {"test.toml:1: key 'model.n_neurons' is missing: required, an integer in [1, 20000]"});
  expect_error(lines({"name = \"x\"", "[model]", "n_neurons = 4", "[estimators]", "use = [\"iv\"]"}),
               {"test.toml:2: key 'model.timesteps' is missing: required, an integer in [3, 1000000000]"});
  expect_error(lines({"[estimators]", "use = [\"iv\"]"}),
               {"test.toml:1: key 'model' is missing: required, a [model] table with n_neurons and timesteps"});
  expect_error(
      lines({"[model]", "n_neurons = 4", "timesteps = 100", "[estimators]", "[estimators.lasso]", "alpha = 1"}),
      {"test.toml:4: key 'estimators.use' is missing: required, a non-empty array of unique estimator labels",
       "methods: correlation, perturbation, ols, lasso, iv"});
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100"}),
               {"test.toml:1: key 'estimators.use' is missing: required"});
  // [estimators] made implicitly by [estimators.lasso]: the line of that header.
  expect_error(lines({"[model]", "n_neurons = 4", "timesteps = 100", "", "[estimators.lasso]", "alpha = 1"}),
               {"test.toml:5: key 'estimators.use' is missing"});
}

TEST(Config, BackendAndSeedForms) {
  expect_error(base({"[run]", "backend = \"CUDA\""}),
               {"test.toml:7: key 'run.backend' has value \"CUDA\": must be one of \"auto\", \"cpu\", \"cuda\""});
  expect_error(base({"[seeds]", "count = 5", "list = [1, 2]"}),
               {"test.toml:7: key 'seeds.count' has value 5: cannot be combined with seeds.list: give either list or "
                "count/start"});
  expect_error(base({"[seeds]", "list = [1, 2]", "start = 3"}),
               {"test.toml:8: key 'seeds.start' has value 3: cannot be combined with seeds.list"});
}

TEST(Config, EveryErrorHasALine) {
  // A broad sample of bad configs: every message starts with "test.toml:<line >= 1>: ".
  const std::string bad[] = {
      "",
      "x = 1\n",
      base({"[seeds]", "list = [1.5]"}),
      base({"[run]", "threads = 1e9"}),
      lines({"[model]", "n_neurons = 4", "timesteps = { start = 3, stop = 4, num = 3 }"}),
  };
  for (const auto& text : bad) {
    const auto message = error_of(text);
    SCOPED_TRACE(text);
    ASSERT_EQ(message.rfind("test.toml:", 0), 0u) << message;
    EXPECT_NE(message.substr(10, 2), "0:") << message;
  }
}

}  // namespace
}  // namespace causalsweep

TEST(Config, LassoSolverDefaultsToActiveSetAndAcceptsCyclic) {
  const auto config = causalsweep::parse_config(
      "[model]\nn_neurons = 4\ntimesteps = 100\n[estimators]\nuse = [\"lasso\", \"sk\"]\n"
      "[estimators.sk]\nmethod = \"lasso\"\nsolver = \"cyclic\"\n",
      "test.toml");
  EXPECT_EQ(config.estimators[0].solver, causalsweep::LassoSolver::active_set);
  EXPECT_EQ(config.estimators[1].solver, causalsweep::LassoSolver::cyclic);
  EXPECT_EQ(causalsweep::to_json(config)["estimators"][1]["solver"], "cyclic");
}
