// The N-to-1 experiment's CUDA kernels (kernels/n_to_1.cu) against the CPU implementation
// (host/n_to_1.cpp).
//
//   CudaNTo1Host.*    without a GPU: the kernels' code run by the host emulator, stage by stage
//                     (spike trains, voltage and output spikes, noise, surrogate permutations, STA
//                     heights, K and p) and as whole Outcomes against n_to_1::run_experiment; tiles
//                     and batches change nothing, bit for bit
//   CudaNTo1Device.*  on a GPU (skipped without one, with the reason): the same comparisons for the
//                     device, the device against the emulator stage by stage, and a full 600 s run
//
// Tolerances: integers (spike counts and indices, windows, K, output spikes) exactly; the heights
// bitwise where the signal is the same (the kernels sum in the CPU's order); the voltage to 1e-12
// relative, because GCC contracts host/n_to_1.cpp's arithmetic into FMAs (-march=native) and the
// kernels do not (see kernels/n_to_1.cu); heights of whole runs then to 1e-12 relative, p exactly.
#include <gtest/gtest.h>

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "causalsweep/cuda_devices.hpp"
#include "causalsweep/n_to_1.hpp"
#include "n_to_1_cuda.hpp"

namespace cs = causalsweep;
namespace n1 = causalsweep::n_to_1;
namespace cuda = causalsweep::cuda;

namespace {

#define SKIP_WITHOUT_N1_GPU()                                                                  \
  do {                                                                                         \
    const cs::CudaDevices gpus_ = cs::query_cuda_devices();                                    \
    if (gpus_.count == 0) GTEST_SKIP() << "no CUDA device to run on: " << gpus_.description;  \
  } while (0)

struct Case {
  std::string name;
  n1::Parameters parameters;
  uint64_t seed;
};

// Short runs that cover the kernels' paths: the edges above, one and several lag chunks (window 1000 and 2500
// samples), a window shorter than the CPU's 64-lag register tile, a neuron that fires often,
// groups of trains that do not fill the last block, silent inputs (no windows: NaN heights).
// A dense short run whose seed puts spikes on the edges: a real spike at sample T - L (its window
// just does not fit), a connected input's spike rounding to sample T (never applied to the neuron),
// and a surrogate spike at T - L.
Case boundary_case() {
  n1::Parameters p;
  p.duration = 0.5;
  p.inputs = 20;
  p.shuffles = 4;
  p.window = 0.02;
  p.spike_rate = 200;
  p.dg_exc = 0.5e-9;
  const int64_t samples = n1::sample_count(p), window = n1::window_samples(p);
  const std::vector<n1::InputLabel> labels = n1::input_labels(p);
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    bool real_edge = false, dropped_event = false, surrogate_edge = false;
    for (int i = 0; i < p.inputs; ++i) {
      const std::vector<double> times = n1::poisson_spike_times(seed, i, p.spike_rate, p.duration);
      for (const int64_t index : n1::spike_indices(times, p.timestep)) {
        real_edge = real_edge || index == samples - window;
        dropped_event = dropped_event || (index == samples && labels[static_cast<size_t>(i)].connected);
      }
      for (int s = 0; s < p.shuffles && !surrogate_edge; ++s) {
        const auto permutation = n1::shuffle_permutation(seed, i, s, static_cast<uint32_t>(times.size()));
        for (const int64_t index : n1::spike_indices(n1::shuffled_spike_times(times, permutation), p.timestep))
          surrogate_edge = surrogate_edge || index == samples - window;
      }
    }
    if (real_edge && dropped_event && surrogate_edge) return {"boundary_seed" + std::to_string(seed), p, seed};
  }
  ADD_FAILURE() << "no seed below 2000 puts spikes on every edge";
  return {"boundary_none", p, 0};
}

std::vector<Case> cases() {
  std::vector<Case> out{boundary_case()};
  n1::Parameters p;
  p.duration = 3;
  p.inputs = 8;
  p.shuffles = 20;
  p.dg_exc = 1.2e-9;  // fires a few times per second
  p.dg_inh = 2 * p.dg_exc;
  out.push_back({"window1000_firing", p, 3});

  p = n1::Parameters{};
  p.duration = 2;
  p.inputs = 5;
  p.shuffles = 7;
  p.window = 0.25;  // 2500 lags: three chunks of 1024
  p.spike_rate = 40;
  p.dg_exc = 2e-9;
  p.p_inhibitory = 0.4;
  out.push_back({"window2500_three_chunks", p, 11});

  p = n1::Parameters{};
  p.duration = 2.5;
  p.inputs = 4;
  p.shuffles = 9;
  p.window = 0.003;  // 30 lags, the CPU's short-window path
  p.spike_rate = 50;
  p.dg_exc = 1.5e-9;
  out.push_back({"window30", p, 5});

  p = n1::Parameters{};
  p.duration = 2;
  p.inputs = 3;
  p.shuffles = 5;
  p.spike_rate = 0.4;  // most inputs have no spike or no window
  out.push_back({"sparse_inputs", p, 2});

  p = n1::Parameters{};
  p.duration = 2;
  p.inputs = 30;
  p.shuffles = 100;  // the notebook's structure, shortened: 3030 trains, 379 groups
  p.dg_inh = 4 * p.dg_exc;
  out.push_back({"notebook_structure_2s", p, 0});
  return out;
}

std::vector<cuda::NTo1Job> jobs_of(const std::vector<Case>& list) {
  std::vector<cuda::NTo1Job> jobs;
  for (const Case& c : list) jobs.push_back(cuda::make_n_to_1_job(c.parameters, c.seed));
  return jobs;
}

double relative_gap(double got, double want) {
  if (std::isnan(got) && std::isnan(want)) return 0;
  return std::abs(got - want) / std::max(std::abs(want), 1e-300);
}

bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Every input's spike times as the CPU draws them.
std::vector<std::vector<double>> cpu_times(const Case& c) {
  std::vector<std::vector<double>> times;
  for (int i = 0; i < c.parameters.inputs; ++i)
    times.push_back(n1::poisson_spike_times(c.seed, i, c.parameters.spike_rate, c.parameters.duration));
  return times;
}

// Outcome of a kernel run against n_to_1::run_experiment's: integers and p exactly, heights to
// `tolerance` relative, scores exactly (they are functions of the p-values and labels).
void expect_outcome_matches(const n1::Outcome& want, const n1::Outcome& got, const std::string& what, double tolerance,
                            double& largest_gap) {
  ASSERT_EQ(want.inputs.size(), got.inputs.size()) << what;
  EXPECT_EQ(want.output_spikes, got.output_spikes) << what;
  EXPECT_EQ(want.output_rate, got.output_rate) << what;
  for (size_t i = 0; i < want.inputs.size(); ++i) {
    const n1::InputTest& a = want.inputs[i];
    const n1::InputTest& b = got.inputs[i];
    const std::string at = what + " input " + std::to_string(i);
    EXPECT_EQ(a.inhibitory, b.inhibitory) << at;
    EXPECT_EQ(a.connected, b.connected) << at;
    EXPECT_EQ(a.spikes, b.spikes) << at;
    EXPECT_EQ(a.windows, b.windows) << at;
    EXPECT_EQ(a.exceed, b.exceed) << at;
    EXPECT_EQ(a.p_value, b.p_value) << at;
    EXPECT_EQ(a.p_upper_bound, b.p_upper_bound) << at;
    for (const auto& [x, y, name] : {std::tuple{a.height, b.height, "height"},
                                     std::tuple{a.relative_height, b.relative_height, "relative height"}}) {
      const double gap = relative_gap(y, x);
      largest_gap = std::max(largest_gap, gap);
      EXPECT_LE(gap, tolerance) << at << " " << name << ": CPU " << x << ", kernels " << y;
      EXPECT_EQ(std::isnan(x), std::isnan(y)) << at << " " << name;
    }
  }
  const double scores_want[] = {want.tpr, want.tpr_exc, want.tpr_inh, want.fpr, want.auc, want.auc_exc, want.auc_inh};
  const double scores_got[] = {got.tpr, got.tpr_exc, got.tpr_inh, got.fpr, got.auc, got.auc_exc, got.auc_inh};
  for (int s = 0; s < 7; ++s) EXPECT_TRUE(same_double(scores_want[s], scores_got[s])) << what << " score " << s;
  ASSERT_EQ(want.roc.size(), got.roc.size()) << what;
  for (size_t k = 0; k < want.roc.size(); ++k) {
    EXPECT_EQ(want.roc[k].threshold, got.roc[k].threshold) << what << " roc " << k;
    EXPECT_TRUE(same_double(want.roc[k].fpr, got.roc[k].fpr)) << what << " roc " << k;
    EXPECT_TRUE(same_double(want.roc[k].tpr, got.roc[k].tpr)) << what << " roc " << k;
  }
}

void expect_outcomes_bitwise_equal(const std::vector<n1::Outcome>& a, const std::vector<n1::Outcome>& b,
                                   const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].inputs.size(), b[r].inputs.size()) << what;
    EXPECT_EQ(a[r].output_spikes, b[r].output_spikes) << what << " run " << r;
    for (size_t i = 0; i < a[r].inputs.size(); ++i) {
      EXPECT_TRUE(same_double(a[r].inputs[i].height, b[r].inputs[i].height)) << what << " run " << r << " input " << i;
      EXPECT_TRUE(same_double(a[r].inputs[i].relative_height, b[r].inputs[i].relative_height)) << what << " run " << r;
      EXPECT_EQ(a[r].inputs[i].exceed, b[r].inputs[i].exceed) << what << " run " << r << " input " << i;
      EXPECT_EQ(a[r].inputs[i].windows, b[r].inputs[i].windows) << what << " run " << r << " input " << i;
    }
    EXPECT_TRUE(same_double(a[r].auc, b[r].auc)) << what << " run " << r;
  }
}

std::vector<n1::Parameters> parameters_of(const std::vector<Case>& list) {
  std::vector<n1::Parameters> out;
  for (const Case& c : list) out.push_back(c.parameters);
  return out;
}
std::vector<uint64_t> seeds_of(const std::vector<Case>& list) {
  std::vector<uint64_t> out;
  for (const Case& c : list) out.push_back(c.seed);
  return out;
}

// Stage-by-stage checks of one inspected kernel run (emulated or on the device) against the CPU.
void expect_stages_match_cpu(const std::vector<Case>& list, const std::vector<cuda::NTo1RunResult>& raw,
                             const cuda::NTo1Inspection& inspection, const std::string& backend,
                             double time_tolerance) {
  ASSERT_EQ(raw.size(), list.size());
  ASSERT_EQ(inspection.runs.size(), list.size());
  double voltage_gap = 0, time_gap = 0;
  int64_t differing_times = 0, all_times = 0;
  for (size_t r = 0; r < list.size(); ++r) {
    const Case& c = list[r];
    const n1::Parameters& p = c.parameters;
    const cuda::NTo1Inspection::Run& run = inspection.runs[r];
    const std::string what = backend + " " + c.name;
    const int64_t samples = n1::sample_count(p), window = n1::window_samples(p);
    const size_t per_input = static_cast<size_t>(p.shuffles) + 1;

    // Spike trains: the CPU's doubles and indices; the real train's windows.
    const std::vector<std::vector<double>> times = cpu_times(c);
    std::vector<std::vector<int64_t>> indices;
    ASSERT_EQ(run.times.size(), times.size()) << what;
    ASSERT_EQ(run.trains.size(), times.size() * per_input) << what;
    for (size_t i = 0; i < times.size(); ++i) {
      indices.push_back(n1::spike_indices(times[i], p.timestep));
      ASSERT_EQ(run.times[i].size(), times[i].size()) << what << " input " << i;
      EXPECT_EQ(raw[r].spikes[i], static_cast<int64_t>(times[i].size())) << what << " input " << i;
      for (size_t j = 0; j < times[i].size(); ++j) {
        const double gap = relative_gap(run.times[i][j], times[i][j]);
        time_gap = std::max(time_gap, gap);
        differing_times += run.times[i][j] != times[i][j];
        ++all_times;
        EXPECT_LE(gap, time_tolerance) << what << " input " << i << " spike " << j;
      }
      EXPECT_EQ(run.trains[i * per_input], indices.back()) << what << " input " << i << " real train";
    }

    // The neuron: output spikes exactly, v to float64 rounding, the cosmetic peaks.
    const n1::NeuronTrace trace = n1::simulate_neuron(p, indices);
    EXPECT_EQ(run.output_spike_samples, trace.spikes) << what;
    EXPECT_EQ(raw[r].output_spikes, static_cast<int64_t>(trace.spikes.size())) << what;
    ASSERT_EQ(run.voltage.size(), trace.v.size()) << what;
    // Relative to the neuron's voltage scale |v_r| near 0 V (spike upswings cross it).
    const double scale = std::abs(p.neuron.v_r);
    int bad = 0;
    for (size_t t = 0; t < trace.v.size(); ++t) {
      const double gap = std::abs(run.voltage[t] - trace.v[t]) / std::max(std::abs(trace.v[t]), scale);
      voltage_gap = std::max(voltage_gap, gap);
      if (!(gap <= 1e-12) && ++bad <= 5) ADD_FAILURE() << what << " v[" << t << "] " << run.voltage[t] << " CPU " << trace.v[t];
    }
    for (const int64_t t : trace.spikes) {
      EXPECT_EQ(run.voltage[static_cast<size_t>(t) - 1], p.neuron.v_peak) << what << " spike " << t;
      EXPECT_EQ(run.voltage[static_cast<size_t>(t)], p.neuron.c) << what << " spike " << t;
    }

    // Imaging noise: signal = v + sigma * the CPU's normals.
    const std::vector<double> noise = n1::imaging_noise(c.seed, samples);
    const double sigma = (p.neuron.v_peak - p.neuron.v_r) / p.spike_snr;
    ASSERT_EQ(run.signal.size(), noise.size()) << what;
    bad = 0;
    for (size_t t = 0; t < noise.size(); ++t) {
      const double scaled = sigma * noise[t];
      const double want = run.voltage[t] + scaled;
      if (!(std::abs(run.signal[t] - want) <= 1e-15 * (std::abs(run.voltage[t]) + std::abs(scaled))) && ++bad <= 5)
        ADD_FAILURE() << what << " signal[" << t << "] " << run.signal[t] << ", v + sigma noise " << want;
    }

    // Surrogates: the CPU's permutations, rebuilt into sample indices the CPU's way.
    for (size_t i = 0; i < times.size(); ++i)
      for (int s = 0; s < p.shuffles; ++s) {
        const std::vector<uint32_t> permutation =
            n1::shuffle_permutation(c.seed, static_cast<int>(i), s, static_cast<uint32_t>(times[i].size()));
        const std::vector<int64_t> want = n1::spike_indices(n1::shuffled_spike_times(times[i], permutation), p.timestep);
        EXPECT_EQ(run.trains[i * per_input + 1 + static_cast<size_t>(s)], want)
            << what << " input " << i << " surrogate " << s;
      }

    // STA heights: the CPU's, on the kernels' own signal and trains, bit for bit; then K and p.
    const n1::SpikeTriggeredAverages stas = n1::spike_triggered_averages(run.signal, run.trains, window);
    ASSERT_EQ(raw[r].heights.size(), stas.heights.size()) << what;
    for (size_t k = 0; k < stas.heights.size(); ++k) {
      EXPECT_EQ(raw[r].windows[k], stas.windows[k]) << what << " train " << k;
      EXPECT_TRUE(same_double(raw[r].heights[k], stas.heights[k]))
          << what << " train " << k << ": kernels " << raw[r].heights[k] << ", CPU " << stas.heights[k];
    }
    const n1::Outcome outcome = cuda::outcome_from(cuda::make_n_to_1_job(p, c.seed), raw[r]);
    for (size_t i = 0; i < times.size(); ++i) {
      const std::vector<double> surrogates(stas.heights.begin() + static_cast<std::ptrdiff_t>(i * per_input + 1),
                                           stas.heights.begin() + static_cast<std::ptrdiff_t>((i + 1) * per_input));
      const n1::InputTest want = n1::shuffle_test(stas.heights[i * per_input], surrogates);
      EXPECT_EQ(outcome.inputs[i].exceed, want.exceed) << what << " input " << i;
      EXPECT_EQ(outcome.inputs[i].p_value, want.p_value) << what << " input " << i;
      EXPECT_EQ(outcome.inputs[i].p_upper_bound, want.p_upper_bound) << what << " input " << i;
    }
  }
  std::printf("[          ] %s: largest relative gap: voltage %.3g, spike times %.3g (%lld of %lld not bitwise)\n",
              backend.c_str(), voltage_gap, time_gap, static_cast<long long>(differing_times),
              static_cast<long long>(all_times));
}

}  // namespace

// ---- without a GPU: the kernels' code run by the host emulator ------------------------------------

TEST(CudaNTo1Host, StagesMatchCpu) {
  const std::vector<Case> list = cases();
  // The default tiles, then tiny ones: every output spike at a neuron tile's first sample (its
  // cosmetic peak goes to the previous tile), windows straddling many heights tiles.
  cuda::NTo1Tuning tiny;
  tiny.neuron_tile = 1;
  tiny.sta_tile = 37;
  for (const cuda::NTo1Tuning& tuning : {cuda::NTo1Tuning{}, tiny}) {
    cuda::NTo1Inspection inspection;
    const std::vector<cuda::NTo1RunResult> raw = cuda::emulate_n_to_1_jobs_on_host(jobs_of(list), tuning, &inspection);
    // glibc's log on both sides: the same spike times, bit for bit.
    expect_stages_match_cpu(list, raw, inspection, "emulated (tiles " + std::to_string(tuning.sta_tile) + ")", 0.0);
  }
}

TEST(CudaNTo1Host, OutcomesMatchRunExperiment) {
  std::vector<Case> list = cases();
  n1::Parameters p;  // the notebook's defaults on 6 s, at two conductance ratios
  p.duration = 6;
  p.dg_exc = 0.4 * 1e-9;
  for (const double ratio : {0.5, 8.0}) {
    p.dg_inh = ratio * p.dg_exc;
    list.push_back({"defaults_6s_ratio" + std::to_string(ratio), p, 7});
  }
  const std::vector<n1::Outcome> got = cuda::emulate_experiments_on_host(parameters_of(list), seeds_of(list));
  ASSERT_EQ(got.size(), list.size());
  double largest = 0;
  for (size_t r = 0; r < list.size(); ++r)
    expect_outcome_matches(n1::run_experiment(list[r].parameters, list[r].seed), got[r], "emulated " + list[r].name, 1e-12,
                           largest);
  std::printf("[          ] emulated outcomes: largest relative height gap %.3g\n", largest);
}

// How the work is cut (shared-memory tiles, batches, job order) changes nothing, bit for bit.
TEST(CudaNTo1Host, TilesBatchesAndOrderDoNotChangeResults) {
  const std::vector<Case> all = cases();
  const std::vector<Case> list(all.begin(), all.begin() + 5);  // the small ones
  const std::vector<n1::Outcome> reference = cuda::emulate_experiments_on_host(parameters_of(list), seeds_of(list));
  for (const auto& [sta_tile, neuron_tile] : {std::pair{5, 1}, {7, 3}, {100, 999}, {1 << 16, 1 << 16}}) {
    cuda::NTo1Tuning tuning;
    tuning.sta_tile = sta_tile;
    tuning.neuron_tile = neuron_tile;
    expect_outcomes_bitwise_equal(reference, cuda::emulate_experiments_on_host(parameters_of(list), seeds_of(list), tuning),
                                  "tiles " + std::to_string(sta_tile) + "/" + std::to_string(neuron_tile));
  }
  // One job per batch: a budget that holds the largest job only.
  const std::vector<cuda::NTo1Job> jobs = jobs_of(list);
  uint64_t largest = 0;
  for (const cuda::NTo1Job& job : jobs) largest = std::max(largest, cuda::n_to_1_job_bytes(job, 200000, false));
  cuda::NTo1Tuning small;
  small.memory_budget = largest;
  expect_outcomes_bitwise_equal(reference, cuda::emulate_experiments_on_host(parameters_of(list), seeds_of(list), small),
                                "one job per batch");
  std::vector<Case> reversed(list.rbegin(), list.rend());
  std::vector<n1::Outcome> back = cuda::emulate_experiments_on_host(parameters_of(reversed), seeds_of(reversed));
  std::reverse(back.begin(), back.end());
  expect_outcomes_bitwise_equal(reference, back, "reversed order");
}

TEST(CudaNTo1Host, RejectsWhatTheKernelsCannotTake) {
  n1::Parameters p;
  p.shuffles = 0;
  EXPECT_THROW(cuda::make_n_to_1_job(p, 0), std::invalid_argument);  // n_to_1::invalid_reason
  p = n1::Parameters{};
  p.duration = 3e5;  // 3e9 samples: valid on the CPU, beyond the kernels' int32 sample indices
  try {
    cuda::make_n_to_1_job(p, 0);
    FAIL() << "3e9 samples must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("CPU backend"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cuda::emulate_experiments_on_host({n1::Parameters{}}, {1, 2}), std::invalid_argument);  // sizes differ
  cuda::NTo1Tuning tiny;
  tiny.memory_budget = 1024;  // no job fits
  n1::Parameters shortened;
  shortened.duration = 1;
  shortened.inputs = 2;
  shortened.shuffles = 2;
  EXPECT_THROW(cuda::emulate_experiments_on_host({shortened}, {0}, tiny), std::runtime_error);
  EXPECT_TRUE(cuda::emulate_experiments_on_host({}, {}).empty());
}

// ---- on a GPU ------------------------------------------------------------------------------------------

TEST(CudaNTo1Device, KernelsRunnable) {
  SKIP_WITHOUT_N1_GPU();
  std::string why;
  EXPECT_TRUE(cuda::n_to_1_kernels_runnable(0, why)) << why;
  EXPECT_FALSE(cuda::n_to_1_kernels_runnable(cs::query_cuda_devices().count, why));
}

// Stage by stage against the CPU, as the emulation is. Spike times may differ from glibc's by an ulp
// (CUDA's log); the indices must not.
TEST(CudaNTo1Device, StagesMatchCpu) {
  SKIP_WITHOUT_N1_GPU();
  const std::vector<Case> list = cases();
  cuda::NTo1Inspection inspection;
  const std::vector<cuda::NTo1RunResult> raw = cuda::run_n_to_1_jobs(0, jobs_of(list), {}, &inspection);
  expect_stages_match_cpu(list, raw, inspection, "device", 1e-14);
}

// The device against the emulator on the same jobs: the same integers, doubles to float64 rounding.
TEST(CudaNTo1Device, MatchesEmulation) {
  SKIP_WITHOUT_N1_GPU();
  const std::vector<Case> list = cases();
  cuda::NTo1Inspection device, host;
  const std::vector<cuda::NTo1RunResult> a = cuda::run_n_to_1_jobs(0, jobs_of(list), {}, &device);
  const std::vector<cuda::NTo1RunResult> b = cuda::emulate_n_to_1_jobs_on_host(jobs_of(list), {}, &host);
  double largest = 0;
  int64_t bitwise_equal = 0, heights = 0;
  for (size_t r = 0; r < list.size(); ++r) {
    const std::string what = list[r].name;
    EXPECT_EQ(a[r].output_spikes, b[r].output_spikes) << what;
    EXPECT_EQ(a[r].spikes, b[r].spikes) << what;
    EXPECT_EQ(a[r].windows, b[r].windows) << what;
    EXPECT_EQ(device.runs[r].trains, host.runs[r].trains) << what;
    EXPECT_EQ(device.runs[r].output_spike_samples, host.runs[r].output_spike_samples) << what;
    for (size_t k = 0; k < a[r].heights.size(); ++k) {
      const double gap = relative_gap(a[r].heights[k], b[r].heights[k]);
      largest = std::max(largest, gap);
      bitwise_equal += same_double(a[r].heights[k], b[r].heights[k]);
      ++heights;
      EXPECT_LE(gap, 1e-12) << what << " train " << k;
    }
  }
  std::printf("[          ] device vs emulation: largest relative height gap %.3g, %lld of %lld heights bitwise equal\n",
              largest, static_cast<long long>(bitwise_equal), static_cast<long long>(heights));
}

TEST(CudaNTo1Device, OutcomesMatchRunExperiment) {
  SKIP_WITHOUT_N1_GPU();
  const std::vector<Case> list = cases();
  const std::vector<n1::Outcome> got = cuda::run_experiments_on_gpu(0, parameters_of(list), seeds_of(list));
  double largest = 0;
  for (size_t r = 0; r < list.size(); ++r)
    expect_outcome_matches(n1::run_experiment(list[r].parameters, list[r].seed), got[r], "device " + list[r].name, 1e-12,
                           largest);
  std::printf("[          ] device outcomes: largest relative height gap %.3g\n", largest);
}

TEST(CudaNTo1Device, TilesAndBatchesDoNotChangeResults) {
  SKIP_WITHOUT_N1_GPU();
  const std::vector<Case> list = cases();
  const std::vector<n1::Outcome> reference = cuda::run_experiments_on_gpu(0, parameters_of(list), seeds_of(list));
  cuda::NTo1Tuning tuning;
  tuning.sta_tile = 333;
  tuning.neuron_tile = 77;
  expect_outcomes_bitwise_equal(reference, cuda::run_experiments_on_gpu(0, parameters_of(list), seeds_of(list), tuning), "tiles");
  uint64_t largest = 0;
  for (const cuda::NTo1Job& job : jobs_of(list)) largest = std::max(largest, cuda::n_to_1_job_bytes(job, 200000, false));
  cuda::NTo1Tuning small;
  small.memory_budget = largest;
  expect_outcomes_bitwise_equal(reference, cuda::run_experiments_on_gpu(0, parameters_of(list), seeds_of(list), small),
                                "one job per batch");
}

// One full run of the notebook's sweep (600 s, 30 inputs, 100 shuffles; ratio 2, seed 0) against the
// CPU (about 20 s of CPU time).
TEST(CudaNTo1Device, FullLengthRunMatchesCpu) {
  SKIP_WITHOUT_N1_GPU();
  n1::Parameters p;
  p.dg_exc = 0.4 * 1e-9;  // as the family converts dg_exc_ns = 0.4
  p.dg_inh = 2 * p.dg_exc;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<n1::Outcome> got = cuda::run_experiments_on_gpu(0, {p}, {0});
  const double gpu = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const n1::Outcome want = n1::run_experiment(p, 0);
  double largest = 0;
  expect_outcome_matches(want, got[0], "device 600 s", 1e-12, largest);
  std::printf("[          ] 600 s run: device %.2f s (simulate %.2f, test %.2f), CPU %.1f s; largest height gap %.3g\n", gpu,
              got[0].simulate_seconds, got[0].test_seconds, want.simulate_seconds + want.test_seconds, largest);
}

#endif  // CAUSALSWEEP_HAVE_CUDA
