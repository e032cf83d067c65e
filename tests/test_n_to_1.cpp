// The N-to-1 spiking experiment (causalsweep/n_to_1.hpp): every step against the independent numpy
// reference of tests/reference/n_to_1_reference.py on the same inputs, the random streams, and the
// behaviour the notebook reports (output rate against the conductance ratio, detection, FPR).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "causalsweep/n_to_1.hpp"
#include "engine.hpp"

namespace n1 = causalsweep::n_to_1;
using nlohmann::json;

namespace {

const std::string reference_dir = std::string(CAUSALSWEEP_SOURCE_DIR) + "/tests/reference/n_to_1/";

// Rows of comma-separated numbers, each row as long as it is (spike trains, permutations).
std::vector<std::vector<double>> read_rows(const std::string& name) {
  std::ifstream in(reference_dir + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<std::vector<double>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

const json& expected() {
  static const json data = [] {
    std::ifstream in(reference_dir + "expected.json");
    return json::parse(in);
  }();
  return data;
}

double number(const json& value) { return value.is_null() ? std::nan("") : value.get<double>(); }

n1::Parameters reference_parameters() {
  const json& p = expected()["parameters"];
  n1::Parameters out;
  out.duration = p["duration"];
  out.timestep = p["timestep"];
  out.tau_syn = p["tau_syn"];
  out.spike_snr = p["spike_snr"];
  out.window = p["window"];
  out.inputs = p["inputs"];
  out.p_inhibitory = p["p_inhibitory"];
  out.p_connected = p["p_connected"];
  out.spike_rate = p["spike_rate"];
  out.dg_exc = p["dg_exc"];
  out.dg_inh = p["dg_inh"];
  out.v_syn_exc = p["v_syn_exc"];
  out.v_syn_inh = p["v_syn_inh"];
  out.shuffles = p["shuffles"];
  out.threshold = p["threshold"];
  const json& n = p["neuron"];
  out.neuron = {n["C"], n["k"], n["v_r"], n["v_t"], n["v_peak"], n["a"], n["b"], n["c"], n["d"]};
  return out;
}

// The reference's inputs, read once.
struct ReferenceInputs {
  std::vector<std::vector<double>> times;
  std::vector<std::vector<int64_t>> indices;
  std::vector<double> noise;
  std::vector<std::vector<uint32_t>> permutations;  // row input * shuffles + s
};

const ReferenceInputs& inputs() {
  static const ReferenceInputs data = [] {
    ReferenceInputs d;
    const n1::Parameters p = reference_parameters();
    d.times = read_rows("spike_times.csv");
    for (const auto& times : d.times) d.indices.push_back(n1::spike_indices(times, p.timestep));
    for (const auto& row : read_rows("noise.csv")) d.noise.push_back(row.at(0));
    for (const auto& row : read_rows("permutations.csv"))
      d.permutations.emplace_back(row.begin(), row.end());
    return d;
  }();
  return data;
}

void expect_relative(double actual, double reference, double rel, double scale, const std::string& what) {
  if (std::isnan(reference)) {
    EXPECT_TRUE(std::isnan(actual)) << what << " should be NaN, is " << actual;
    return;
  }
  EXPECT_LE(std::abs(actual - reference), rel * std::max(std::abs(reference), scale))
      << what << ": " << actual << " vs " << reference;
}

void expect_same_rate(double actual, const json& reference, const std::string& what) {
  expect_relative(actual, number(reference), 1e-15, 1.0, what);
}

// Outcome.inputs from p-values and labels, as evaluate() reads them.
n1::Outcome outcome_from(const json& p_values, const json& inhibitory, const json& connected) {
  n1::Outcome outcome;
  for (size_t i = 0; i < p_values.size(); ++i) {
    n1::InputTest test;
    test.p_value = p_values[i];
    test.inhibitory = inhibitory[i];
    test.connected = connected[i];
    outcome.inputs.push_back(test);
  }
  return outcome;
}

void expect_evaluation(const n1::Outcome& actual, const json& reference, const std::string& what) {
  const json& fixed = reference["at_threshold"];
  expect_same_rate(actual.tpr, fixed["tpr"], what + " tpr");
  expect_same_rate(actual.tpr_exc, fixed["tpr_exc"], what + " tpr_exc");
  expect_same_rate(actual.tpr_inh, fixed["tpr_inh"], what + " tpr_inh");
  expect_same_rate(actual.fpr, fixed["fpr"], what + " fpr");
  ASSERT_EQ(actual.roc.size(), reference["roc"].size()) << what;
  for (size_t i = 0; i < actual.roc.size(); ++i) {
    const json& point = reference["roc"][i];
    const std::string at = what + " roc point " + std::to_string(i);
    EXPECT_EQ(actual.roc[i].threshold, point["threshold"].get<double>()) << at;
    expect_same_rate(actual.roc[i].fpr, point["fpr"], at + " fpr");
    expect_same_rate(actual.roc[i].tpr, point["tpr"], at + " tpr");
    expect_same_rate(actual.roc[i].tpr_exc, point["tpr_exc"], at + " tpr_exc");
    expect_same_rate(actual.roc[i].tpr_inh, point["tpr_inh"], at + " tpr_inh");
  }
  expect_same_rate(actual.auc, reference["auc"], what + " auc");
  expect_same_rate(actual.auc_exc, reference["auc_exc"], what + " auc_exc");
  expect_same_rate(actual.auc_inh, reference["auc_inh"], what + " auc_inh");
}

// A short, cheap run for the stream tests.
n1::Parameters short_run() {
  n1::Parameters p;
  p.duration = 20;
  p.inputs = 6;
  p.shuffles = 10;
  return p;
}

}  // namespace

TEST(NTo1Reference, SpikeIndicesRoundHalfToEven) {
  const json& reference = expected()["spike_indices"];
  ASSERT_EQ(inputs().indices.size(), reference.size());
  for (size_t i = 0; i < reference.size(); ++i)
    EXPECT_EQ(inputs().indices[i], reference[i].get<std::vector<int64_t>>()) << "input " << i;
  // The hand-placed spikes: sample 0, 12.5 -> 12 and 13.5 -> 14 samples, and one rounding to T.
  EXPECT_EQ(inputs().indices[2].front(), 0);
  EXPECT_EQ(n1::spike_indices({0.00125, 0.00135, 0.00025}, 1e-4), (std::vector<int64_t>{12, 14, 2}));
  EXPECT_EQ(inputs().indices[3].back(), expected()["samples"].get<int64_t>());
}

TEST(NTo1Reference, LabelsFollowTheSpecLayout) {
  const auto labels = n1::input_labels(reference_parameters());
  ASSERT_EQ(labels.size(), expected()["connected"].size());
  for (size_t i = 0; i < labels.size(); ++i) {
    EXPECT_EQ(labels[i].inhibitory, expected()["inhibitory"][i].get<bool>()) << i;
    EXPECT_EQ(labels[i].connected, expected()["connected"][i].get<bool>()) << i;
  }
  // The defaults: inhibitory 0-5 (0-3 connected), excitatory 6-29 (6-22 connected).
  const auto defaults = n1::input_labels(n1::Parameters{});
  ASSERT_EQ(defaults.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(defaults[i].inhibitory, i < 6) << i;
    EXPECT_EQ(defaults[i].connected, i < 4 || (i >= 6 && i <= 22)) << i;
  }
  EXPECT_EQ(n1::sample_count(n1::Parameters{}), 6000000);
  EXPECT_EQ(n1::window_samples(n1::Parameters{}), 1000);
}

TEST(NTo1Reference, NeuronTraceMatchesNumpy) {
  const n1::Parameters p = reference_parameters();
  ASSERT_EQ(n1::sample_count(p), expected()["samples"].get<int64_t>());
  const n1::NeuronTrace trace = n1::simulate_neuron(p, inputs().indices, true);
  EXPECT_EQ(trace.spikes, expected()["output_spikes"].get<std::vector<int64_t>>());
  std::ifstream in(reference_dir + "trace.csv");
  std::string line;
  std::getline(in, line);
  int rows = 0;
  for (; std::getline(in, line); ++rows) {
    std::stringstream cells(line);
    std::vector<double> row;
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    const auto t = static_cast<size_t>(row.at(0));
    const std::string at = " at sample " + std::to_string(t);
    expect_relative(trace.v[t], row[1], 1e-12, 1e-3, "v" + at);
    expect_relative(trace.g_exc[t], row[2], 1e-12, 1e-9, "g_exc" + at);
    expect_relative(trace.g_inh[t], row[3], 1e-12, 1e-9, "g_inh" + at);
    expect_relative(trace.i_syn[t], row[4], 1e-12, 1e-11, "i_syn" + at);
  }
  EXPECT_GT(rows, 800);
  // The cosmetic peak and the reset around every output spike.
  for (const int64_t t : trace.spikes) {
    EXPECT_EQ(trace.v[t - 1], p.neuron.v_peak);
    EXPECT_EQ(trace.v[t], p.neuron.c);
  }
}

TEST(NTo1Reference, StasHeightsAndPValuesMatchNumpy) {
  const n1::Parameters p = reference_parameters();
  const n1::NeuronTrace trace = n1::simulate_neuron(p, inputs().indices);
  const double sigma = expected()["sigma"];
  std::vector<double> signal(trace.v.size());
  for (size_t t = 0; t < signal.size(); ++t) signal[t] = trace.v[t] + sigma * inputs().noise.at(t);
  const int64_t window = n1::window_samples(p);
  ASSERT_EQ(window, expected()["window_samples"].get<int64_t>());

  for (int i = 0; i < p.inputs; ++i) {
    const json& reference = expected()["tests"][i];
    const std::string what = "input " + std::to_string(i);
    // Train 0 the real one, then its surrogates from the reference's permutations.
    std::vector<std::vector<int64_t>> trains{inputs().indices[i]};
    for (int s = 0; s < p.shuffles; ++s)
      trains.push_back(n1::spike_indices(
          n1::shuffled_spike_times(inputs().times[i], inputs().permutations.at(i * p.shuffles + s)), p.timestep));
    const n1::SpikeTriggeredAverages stas = n1::spike_triggered_averages(signal, trains, window, true);
    EXPECT_EQ(stas.windows[0], reference["windows"].get<int64_t>()) << what;
    expect_relative(stas.heights[0], reference["height"], 1e-12, 0.0, what + " height");
    for (int s = 0; s < p.shuffles; ++s)
      expect_relative(stas.heights[s + 1], reference["surrogate_heights"][s], 1e-12, 0.0,
                      what + " surrogate " + std::to_string(s));
    if (expected()["real_stas"].contains(std::to_string(i))) {
      const json& average = expected()["real_stas"][std::to_string(i)];
      ASSERT_EQ(average.size(), static_cast<size_t>(window));
      for (int64_t m = 0; m < window; ++m)
        expect_relative(stas.averages[m], average[m], 1e-12, 0.0, what + " STA lag " + std::to_string(m));
    }
    const n1::InputTest test =
        n1::shuffle_test(stas.heights[0], std::vector<double>(stas.heights.begin() + 1, stas.heights.end()));
    EXPECT_EQ(test.exceed, reference["exceed"].get<int>()) << what;
    EXPECT_EQ(test.p_value, reference["p_value"].get<double>()) << what;
    EXPECT_EQ(test.p_upper_bound, reference["p_upper_bound"].get<bool>()) << what;
    expect_relative(test.relative_height, reference["relative_height"], 1e-12, 0.0, what + " relative height");
  }
}

TEST(NTo1Reference, EvaluationMatchesNumpy) {
  json p_values = json::array();
  for (const json& test : expected()["tests"]) p_values.push_back(test["p_value"]);
  n1::Outcome outcome = outcome_from(p_values, expected()["inhibitory"], expected()["connected"]);
  n1::evaluate(outcome, reference_parameters().threshold);
  expect_evaluation(outcome, expected()["evaluation"], "reference run");
}

TEST(NTo1Reference, AucStepRuleTiesAndEmptyDenominators) {
  for (const json& c : expected()["auc_cases"]) {
    n1::Outcome outcome = outcome_from(c["p_values"], c["inhibitory"], c["connected"]);
    n1::evaluate(outcome, 0.05);
    expect_evaluation(outcome, c, c["name"].get<std::string>());
  }
  // The spec's example: one of 9 unconnected inputs tied with the 21 connected at p = 0.01.
  const json& tie = expected()["auc_cases"][0];
  ASSERT_EQ(tie["name"], "tie_at_floor");
  n1::Outcome outcome = outcome_from(tie["p_values"], tie["inhibitory"], tie["connected"]);
  n1::evaluate(outcome, 0.05);
  EXPECT_NEAR(outcome.auc, 8.0 / 9.0, 1e-15);
  EXPECT_NEAR(outcome.auc_inh, 8.0 / 9.0, 1e-15);
  EXPECT_EQ(outcome.roc.front().fpr, 0.0);
  EXPECT_EQ(outcome.roc.front().tpr, 0.0);
  EXPECT_EQ(outcome.roc.back().fpr, 1.0);
  EXPECT_EQ(outcome.roc.back().tpr, 1.0);
}

TEST(NTo1Streams, SameSeedSameOutcomeOtherSeedOther) {
  const n1::Parameters p = short_run();
  const n1::Outcome a = n1::run_experiment(p, 7), b = n1::run_experiment(p, 7), c = n1::run_experiment(p, 8);
  ASSERT_EQ(a.inputs.size(), 6u);
  EXPECT_EQ(a.output_spikes, b.output_spikes);
  bool any_different = a.output_spikes != c.output_spikes;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    EXPECT_EQ(a.inputs[i].spikes, b.inputs[i].spikes);
    EXPECT_EQ(a.inputs[i].height, b.inputs[i].height);
    EXPECT_EQ(a.inputs[i].exceed, b.inputs[i].exceed);
    EXPECT_EQ(a.inputs[i].relative_height, b.inputs[i].relative_height);
    any_different = any_different || a.inputs[i].height != c.inputs[i].height;
  }
  EXPECT_EQ(a.auc, b.auc);
  EXPECT_TRUE(any_different);
  // The run's trains are the stream's, with exponential_interval's words in order.
  EXPECT_EQ(a.inputs[3].spikes, static_cast<int64_t>(n1::poisson_spike_times(7, 3, p.spike_rate, p.duration).size()));
}

TEST(NTo1Streams, PoissonTrainsHaveTheirRateAndExponentialIntervals) {
  // 30 trains of 600 s at 20 Hz: 360000 spikes expected, sd 600.
  int64_t total = 0;
  double interval_sum = 0, interval_squares = 0;
  int64_t intervals = 0;
  for (int i = 0; i < 30; ++i) {
    const std::vector<double> times = n1::poisson_spike_times(3, i, 20, 600);
    total += static_cast<int64_t>(times.size());
    EXPECT_NEAR(static_cast<double>(times.size()), 12000, 5 * std::sqrt(12000.0)) << i;
    ASSERT_FALSE(times.empty());
    EXPECT_GT(times.front(), 0);
    EXPECT_LT(times.back(), 600);
    EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
    for (size_t j = 1; j < times.size(); ++j) {
      const double isi = times[j] - times[j - 1];
      interval_sum += isi;
      interval_squares += isi * isi;
      ++intervals;
    }
  }
  EXPECT_NEAR(static_cast<double>(total), 360000, 5 * 600);
  // Exponential intervals: mean 1 / rate and coefficient of variation 1 (its sd over 360000 is ~0.002).
  const double mean = interval_sum / static_cast<double>(intervals);
  const double sd = std::sqrt(interval_squares / static_cast<double>(intervals) - mean * mean);
  EXPECT_NEAR(mean, 0.05, 5 * 0.05 / std::sqrt(360000.0));
  EXPECT_NEAR(sd / mean, 1.0, 0.01);
  // The first interval is word 0 of block 0 of the input's stream.
  const causalsweep::RandomBlock block =
      causalsweep::philox_block(3, causalsweep::subsequence(causalsweep::Purpose::spike_intervals, 4), 0);
  EXPECT_EQ(n1::poisson_spike_times(3, 4, 20, 600).front(), n1::exponential_interval(block.word[0], 20));
}

TEST(NTo1Streams, ImagingNoiseIsStandardNormalInItsBlockLayout) {
  const int64_t samples = 1000003;  // not a multiple of 4: the last block is cut short
  const std::vector<double> noise = n1::imaging_noise(11, samples);
  ASSERT_EQ(static_cast<int64_t>(noise.size()), samples);
  double sum = 0, squares = 0;
  for (const double x : noise) {
    sum += x;
    squares += x * x;
  }
  const double n = static_cast<double>(samples);
  EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(squares / n, 1.0, 5 * std::sqrt(2 / n));
  for (const uint64_t b : {0ull, 1ull, 250000ull}) {
    const causalsweep::RandomBlock block =
        causalsweep::philox_block(11, causalsweep::subsequence(causalsweep::Purpose::imaging_noise, 0), b);
    double normal[4];
    causalsweep::box_muller(block.word[0], block.word[1], normal[0], normal[1]);
    causalsweep::box_muller(block.word[2], block.word[3], normal[2], normal[3]);
    for (int c = 0; c < 4 && 4 * b + c < noise.size(); ++c) EXPECT_EQ(noise[4 * b + c], normal[c]) << b << " " << c;
  }
}

TEST(NTo1Streams, ShufflesArePermutationsThatDiffer) {
  const uint32_t count = 12000;
  std::set<std::vector<uint32_t>> seen;
  for (const auto& [input, surrogate] : std::vector<std::pair<int, int>>{{0, 0}, {0, 1}, {1, 0}, {29, 99}, {0, 65535}}) {
    const std::vector<uint32_t> permutation = n1::shuffle_permutation(5, input, surrogate, count);
    std::vector<uint32_t> sorted = permutation;
    std::sort(sorted.begin(), sorted.end());
    std::vector<uint32_t> identity(count);
    std::iota(identity.begin(), identity.end(), 0u);
    EXPECT_EQ(sorted, identity) << input << " " << surrogate;
    EXPECT_NE(permutation, identity);
    seen.insert(permutation);
    EXPECT_EQ(permutation, n1::shuffle_permutation(5, input, surrogate, count));
  }
  EXPECT_EQ(seen.size(), 5u);
  // All 6 orders of 3 intervals, each about 1/6 of 6000 surrogates (chi-square, 5 degrees of freedom).
  std::vector<int> histogram(6, 0);
  for (int s = 0; s < 6000; ++s) {
    const auto q = n1::shuffle_permutation(9, 2, s, 3);
    histogram[q[0] * 2 + (q[1] > q[2])] += 1;
  }
  double chi_square = 0;
  for (const int h : histogram) chi_square += (h - 1000.0) * (h - 1000.0) / 1000.0;
  EXPECT_LT(chi_square, 20.5);  // p = 0.001
  // Two intervals: one swap decision from word 0 of block 0 (range 2 never rejects).
  const causalsweep::RandomBlock block =
      causalsweep::philox_block(5, causalsweep::subsequence(causalsweep::Purpose::shuffles, 3 * 65536 + 7), 0);
  uint32_t pick = 0;
  ASSERT_TRUE(n1::bounded_integer(block.word[0], 2, pick));
  EXPECT_EQ(n1::shuffle_permutation(5, 3, 7, 2), pick == 0 ? (std::vector<uint32_t>{1, 0}) : (std::vector<uint32_t>{0, 1}));
  // A surrogate keeps the spike count, the interval multiset and (up to rounding) the last spike.
  const std::vector<double> times = n1::poisson_spike_times(5, 0, 20, 60);
  const std::vector<double> shuffled = n1::shuffled_spike_times(times, n1::shuffle_permutation(5, 0, 0, static_cast<uint32_t>(times.size())));
  ASSERT_EQ(shuffled.size(), times.size());
  EXPECT_NEAR(shuffled.back(), times.back(), 1e-12);
  EXPECT_TRUE(std::is_sorted(shuffled.begin(), shuffled.end()));
}

TEST(NTo1Streams, BoundedIntegerRejectsOnlyTheBiasedWords) {
  uint32_t value = 99;
  // range 3: 2^32 mod 3 = 1 biased word, word 0.
  EXPECT_FALSE(n1::bounded_integer(0u, 3, value));
  ASSERT_TRUE(n1::bounded_integer(1u, 3, value));
  EXPECT_EQ(value, 0u);
  ASSERT_TRUE(n1::bounded_integer(0xFFFFFFFFu, 3, value));
  EXPECT_EQ(value, 2u);
  ASSERT_TRUE(n1::bounded_integer(0u, 1, value));
  EXPECT_EQ(value, 0u);
  ASSERT_TRUE(n1::bounded_integer(0x80000000u, 2, value));
  EXPECT_EQ(value, 1u);
  // Every value of a small range equally often over a dense sweep of words.
  std::vector<int> counts(7, 0);
  int rejected = 0;
  for (uint64_t w = 0; w < (1ull << 32); w += 4099) {
    if (n1::bounded_integer(static_cast<uint32_t>(w), 7, value)) ++counts[value];
    else ++rejected;
  }
  for (const int c : counts) EXPECT_NEAR(c, counts[0], 2);
  EXPECT_LE(rejected, 1);
}

TEST(NTo1Streams, DegenerateInputsGiveNaNNotCrashes) {
  n1::Parameters p = short_run();
  p.spike_rate = 0;  // no input spikes: no windows, no output spikes
  const n1::Outcome silent = n1::run_experiment(p, 1);
  EXPECT_EQ(silent.output_spikes, 0);
  EXPECT_EQ(silent.output_rate, 0.0);
  for (const n1::InputTest& test : silent.inputs) {
    EXPECT_EQ(test.spikes, 0);
    EXPECT_EQ(test.windows, 0);
    EXPECT_TRUE(std::isnan(test.height));
    EXPECT_TRUE(std::isnan(test.relative_height));
    EXPECT_EQ(test.p_value, 1.0);
    EXPECT_FALSE(test.p_upper_bound);
  }
  EXPECT_EQ(silent.fpr, 0.0);
  EXPECT_EQ(silent.tpr, 0.0);

  p = short_run();
  p.p_connected = 0;  // nothing connected: every TPR is NaN, FPR is not
  const n1::Outcome unconnected = n1::run_experiment(p, 1);
  EXPECT_EQ(unconnected.output_spikes, 0);
  EXPECT_TRUE(std::isnan(unconnected.tpr));
  EXPECT_TRUE(std::isnan(unconnected.tpr_exc));
  EXPECT_TRUE(std::isnan(unconnected.tpr_inh));
  EXPECT_TRUE(std::isnan(unconnected.auc));
  EXPECT_FALSE(std::isnan(unconnected.fpr));

  // A train whose only spike leaves no room for a window, next to one with windows.
  const std::vector<double> signal(100, 1.0);
  const n1::SpikeTriggeredAverages stas = n1::spike_triggered_averages(signal, {{95}, {}, {3, 10}}, 10);
  EXPECT_EQ(stas.windows, (std::vector<int64_t>{0, 0, 2}));
  EXPECT_TRUE(std::isnan(stas.heights[0]));
  EXPECT_TRUE(std::isnan(stas.heights[1]));
  EXPECT_EQ(stas.heights[2], 0.0);
}

TEST(NTo1Streams, ShortAndLongWindowsSumTheSameWindows) {
  // The register-tiled sums (windows of 64 lags or more, the last chunk overlapping) against a plain sum.
  std::vector<double> signal(50000);
  for (size_t t = 0; t < signal.size(); ++t) signal[t] = std::sin(0.001 * static_cast<double>(t * t % 7919));
  const std::vector<std::vector<int64_t>> trains{
      {0, 5, 5, 17000, 17001, 33000, 49000}, {16383, 16384, 40000}, {}, {48000}};
  for (const int64_t window : {1, 10, 63, 64, 65, 1000, 1999}) {
    const n1::SpikeTriggeredAverages stas = n1::spike_triggered_averages(signal, trains, window, true);
    for (size_t r = 0; r < trains.size(); ++r) {
      std::vector<double> sum(window, 0.0);
      int64_t windows = 0;
      for (const int64_t s : trains[r]) {
        if (s + window >= static_cast<int64_t>(signal.size())) continue;
        for (int64_t m = 0; m < window; ++m) sum[m] += signal[s + m];
        ++windows;
      }
      ASSERT_EQ(stas.windows[r], windows) << window << " " << r;
      for (int64_t m = 0; m < window && windows > 0; ++m)
        EXPECT_EQ(stas.averages[r * window + m], sum[m] / static_cast<double>(windows)) << window << " " << r << " " << m;
    }
  }
}

TEST(NTo1Streams, InvalidReasonNamesTheField) {
  EXPECT_EQ(n1::invalid_reason(n1::Parameters{}), "");
  const auto reason = [](auto change) {
    n1::Parameters p;
    change(p);
    return n1::invalid_reason(p);
  };
  EXPECT_NE(reason([](n1::Parameters& p) { p.shuffles = 0; }).find("shuffles"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.shuffles = 65537; }).find("shuffles"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.inputs = 65536; }).find("inputs"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.timestep = 0; }).find("timestep"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.window = 700; }).find("window"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.p_connected = 1.5; }).find("p_connected"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.dg_inh = -1; }).find("dg_inh"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.spike_snr = std::nan(""); }).find("spike_snr"), std::string::npos);
  EXPECT_NE(reason([](n1::Parameters& p) { p.neuron.v_peak = -0.07; }).find("v_peak"), std::string::npos);
  n1::Parameters bad;
  bad.shuffles = 0;
  EXPECT_THROW(n1::run_experiment(bad, 0), std::invalid_argument);
  EXPECT_GT(n1::run_cost(n1::Parameters{}), 0);
  EXPECT_GT(n1::run_memory_bytes(n1::Parameters{}), 48u << 20);  // at least the 6e6-sample signal
}

// The notebook's figures (N_TO_1_SPEC.md addendum, 20 seeds per ratio), from causalsweep's own
// streams: the same distributions, not the same draws, so the bounds hold for any typical seed.
TEST(NTo1Behaviour, OutputRateFallsWithTheConductanceRatio) {
  // Per-seed output rates in the notebook: 1.52-1.65 Hz at ratio 0.5, 0.21-0.28 at 4, 0.003-0.017
  // at 16. One shuffle: the rate does not depend on the test, which is then nearly free.
  const auto mean_rate = [](double ratio) {
    n1::Parameters p;
    p.dg_inh = p.dg_exc * ratio;
    p.shuffles = 1;
    double sum = 0;
    for (const uint64_t seed : {0u, 1u}) sum += n1::run_experiment(p, seed).output_rate;
    return sum / 2;
  };
  const double low = mean_rate(0.5), middle = mean_rate(4), high = mean_rate(16);
  EXPECT_GT(low, 1.45);
  EXPECT_LT(low, 1.72);
  EXPECT_GT(middle, 0.18);
  EXPECT_LT(middle, 0.31);
  EXPECT_LT(high, 0.03);
  EXPECT_GT(low, middle);
  EXPECT_GT(middle, high);
}

TEST(NTo1Behaviour, ExcitatoryInputsDetectedAtLowRatioWithFewFalsePositives) {
  // One full default run at ratio 0.5: the notebook detects every excitatory connection at every
  // seed (mean TPR_exc 1.0, AUC_exc 0.98, no seed below 0.78), few inhibitory ones (TPR_inh 0.29),
  // and its FPR is a 0.05 test's over 9 unconnected inputs (at most 3 of 9 at any of 140 runs).
  n1::Parameters p;
  p.dg_inh = 0.5 * p.dg_exc;
  const n1::Outcome out = n1::run_experiment(p, 0);
  ASSERT_EQ(out.inputs.size(), 30u);
  EXPECT_GE(out.tpr_exc, 16.0 / 17.0);
  EXPECT_GE(out.auc_exc, 0.75);
  EXPECT_LE(out.tpr_inh, 0.75);
  EXPECT_LE(out.fpr, 3.0 / 9.0);
  EXPECT_GT(out.output_rate, 1.45);
  EXPECT_LT(out.output_rate, 1.75);
  for (const n1::InputTest& test : out.inputs) {
    EXPECT_NEAR(static_cast<double>(test.spikes), 12000, 5 * std::sqrt(12000.0));
    EXPECT_GT(test.windows, test.spikes - 10);  // only windows in the last 0.1 s are lost
    if (test.connected && !test.inhibitory) {
      EXPECT_GT(test.relative_height, 1.5);
    }
  }
}

TEST(NTo1Behaviour, InhibitoryInputsDetectedAtTheDefaultRatio) {
  // The defaults (ratio 4): the notebook detects every connection of both kinds from ratio 2 on
  // (mean TPR_exc and TPR_inh 1.0), at the same 0.05 test's FPR.
  const n1::Outcome out = n1::run_experiment(n1::Parameters{}, 1);
  EXPECT_GE(out.tpr_inh, 0.75);
  EXPECT_GE(out.tpr_exc, 16.0 / 17.0);
  EXPECT_GE(out.auc, 0.75);
  EXPECT_LE(out.fpr, 3.0 / 9.0);
  EXPECT_GT(out.output_rate, 0.18);
  EXPECT_LT(out.output_rate, 0.33);
}
