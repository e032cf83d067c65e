#pragma once
// The N-to-1 spiking experiment (causalsweep/n_to_1.hpp) on a CUDA device: many runs at once, every
// input's spike train, surrogates and spike-triggered-average heights in parallel.
//
// C++17-clean (nvcc compiles it with kernels/n_to_1.cu; g++ with the C++20 callers). Two layers:
//   - run_n_to_1_jobs / emulate_n_to_1_jobs_on_host (kernels/n_to_1.cu): plain jobs in, each run's
//     raw results out (output spikes, spikes and windows per input, the STA height of every train);
//   - run_experiments_on_gpu / emulate_experiments_on_host (inline below): n_to_1::Parameters in,
//     n_to_1::Outcome out, exactly as n_to_1::run_experiment fills it. The inline layer is the only
//     one that calls the model's host functions (labels, sample counts, shuffle_test, evaluate): it
//     is compiled into the caller, so the kernel library never depends on causalsweep_core.
//
// What runs where (per batch of runs that fits device memory; kernels/n_to_1.cu has the details):
//   count    one thread per (run, input): its spike count (the Philox stream, as the CPU draws it)
//   trains   one thread per (run, input): spike times, sample indices, the real train's windows,
//            and the connected inputs' events counted into the run's signal buffer
//   neuron   one block per run, thread 0 steps through time (forward Euler in the CPU's exact
//            order, no FMA contraction), the block stages the signal through shared memory
//   noise    one thread per (run, 4 samples): the CPU's Box-Muller block layout
//   shuffles one thread per (run, input, surrogate): Fisher-Yates from the top with the CPU's
//            words, then the surrogate's sample indices by the CPU's running sum
//   heights  one block per (run, 8 trains, 1024 lags): each thread sums 4 lags of 8 trains in
//            registers over all windows in window order (the CPU's order: bit-identical sums),
//            the signal staged through shared memory in tiles; max - min per train at the end
// The host then turns heights into K and p (n_to_1::shuffle_test) and scores (n_to_1::evaluate).
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "causalsweep/n_to_1.hpp"

namespace causalsweep::cuda {

// ---- raw layer (kernels/n_to_1.cu) ------------------------------------------------------------

// One run as the kernels need it: the parameters plus what the model's host functions derive.
struct NTo1Job {
  n_to_1::Parameters parameters;
  uint64_t seed = 0;
  int64_t samples = 0;                    // n_to_1::sample_count (must be < 2^31 here)
  int64_t window = 0;                     // n_to_1::window_samples
  std::vector<n_to_1::InputLabel> labels;  // n_to_1::input_labels
};

// What the device computes for one run. Trains are input-major: train i * (shuffles + 1) is input
// i's real train, the next `shuffles` its surrogates in surrogate order.
struct NTo1RunResult {
  int64_t output_spikes = 0;
  std::vector<int64_t> spikes;    // per input
  std::vector<int64_t> windows;   // per train
  std::vector<double> heights;    // per train: max - min of its STA; NaN without windows
  double simulate_seconds = 0;    // this run's share of its batch's trains + neuron + noise time
  double test_seconds = 0;        // its share of the shuffles + heights time
};

// Knobs that change how the work is cut, never the results (tests vary them).
struct NTo1Tuning {
  int sta_tile = 8192;          // window starts per shared-memory tile of the heights kernel (>= 1)
  int neuron_tile = 2048;       // samples per shared-memory tile of the neuron kernel (>= 1)
  uint64_t memory_budget = 0;   // bytes for one batch; 0: 90% of the device's free memory (host: 4 GiB)
};

// Intermediate data, for tests: filled per run when passed.
struct NTo1Inspection {
  struct Run {
    std::vector<double> voltage;                  // the neuron's v (with the cosmetic peaks), before noise
    std::vector<double> signal;                   // v plus imaging noise, what the STAs average
    std::vector<int64_t> output_spike_samples;    // the neuron's spikes
    std::vector<std::vector<double>> times;       // per input: spike times (s)
    std::vector<std::vector<int64_t>> trains;     // per train: all its sample indices (windows or not)
  };
  std::vector<Run> runs;
};

// Device memory one job needs in a batch, in bytes (signal, spike times, all trains' indices,
// per-train results); the batches are cut with it.
uint64_t n_to_1_job_bytes(const NTo1Job& job, int64_t total_spikes, bool inspect);

// Runs the jobs on `device` in batches that fit its memory; results in job order. Throws
// std::invalid_argument for a job the kernels cannot take, std::runtime_error on CUDA failures.
std::vector<NTo1RunResult> run_n_to_1_jobs(int device, const std::vector<NTo1Job>& jobs,
                                           const NTo1Tuning& tuning = {}, NTo1Inspection* inspect = nullptr);

// The very same kernels run on the host: each thread of each block in turn between barriers
// (shared memory and outputs poisoned with NaN first), atomics as plain additions.
std::vector<NTo1RunResult> emulate_n_to_1_jobs_on_host(const std::vector<NTo1Job>& jobs, const NTo1Tuning& tuning = {},
                                                       NTo1Inspection* inspect = nullptr);

// Whether the n_to_1 kernels can run on `device`; `why` says what is wrong when not.
bool n_to_1_kernels_runnable(int device, std::string& why);

// ---- outcome layer (inline: compiled into the caller, which links causalsweep_core) -------------

// A job from a run's parameters and seed; throws std::invalid_argument with n_to_1::invalid_reason.
inline NTo1Job make_n_to_1_job(const n_to_1::Parameters& parameters, uint64_t seed) {
  if (const std::string reason = n_to_1::invalid_reason(parameters); !reason.empty())
    throw std::invalid_argument(reason);
  NTo1Job job;
  job.parameters = parameters;
  job.seed = seed;
  job.samples = n_to_1::sample_count(parameters);
  job.window = n_to_1::window_samples(parameters);
  job.labels = n_to_1::input_labels(parameters);
  if (job.samples >= (int64_t{1} << 31) - 1)
    throw std::invalid_argument("the CUDA n_to_1 kernels take fewer than 2^31 - 1 samples per run (got " +
                                std::to_string(job.samples) + "): use the CPU backend");
  return job;
}

// The Outcome n_to_1::run_experiment returns, from a run's raw results (the same shuffle_test and
// evaluate calls on the same heights).
inline n_to_1::Outcome outcome_from(const NTo1Job& job, const NTo1RunResult& raw) {
  const n_to_1::Parameters& p = job.parameters;
  n_to_1::Outcome outcome;
  outcome.output_spikes = raw.output_spikes;
  outcome.output_rate = static_cast<double>(raw.output_spikes) / p.duration;
  const size_t trains_per_input = static_cast<size_t>(p.shuffles) + 1;
  std::vector<double> surrogate_heights(static_cast<size_t>(p.shuffles));
  for (size_t i = 0; i < job.labels.size(); ++i) {
    const size_t real = i * trains_per_input;
    for (size_t s = 0; s < surrogate_heights.size(); ++s) surrogate_heights[s] = raw.heights[real + 1 + s];
    n_to_1::InputTest test = n_to_1::shuffle_test(raw.heights[real], surrogate_heights);
    test.inhibitory = job.labels[i].inhibitory;
    test.connected = job.labels[i].connected;
    test.spikes = raw.spikes[i];
    test.windows = raw.windows[real];
    outcome.inputs.push_back(test);
  }
  n_to_1::evaluate(outcome, p.threshold);
  outcome.simulate_seconds = raw.simulate_seconds;
  outcome.test_seconds = raw.test_seconds;
  return outcome;
}

namespace detail {
inline std::vector<NTo1Job> jobs_of(const std::vector<n_to_1::Parameters>& parameters, const std::vector<uint64_t>& seeds) {
  if (parameters.size() != seeds.size())
    throw std::invalid_argument("run_experiments_on_gpu: " + std::to_string(parameters.size()) + " parameter sets but " +
                                std::to_string(seeds.size()) + " seeds");
  std::vector<NTo1Job> jobs;
  jobs.reserve(parameters.size());
  for (size_t r = 0; r < parameters.size(); ++r) jobs.push_back(make_n_to_1_job(parameters[r], seeds[r]));
  return jobs;
}
inline std::vector<n_to_1::Outcome> outcomes_of(const std::vector<NTo1Job>& jobs, const std::vector<NTo1RunResult>& raw) {
  std::vector<n_to_1::Outcome> outcomes;
  outcomes.reserve(jobs.size());
  for (size_t r = 0; r < jobs.size(); ++r) outcomes.push_back(outcome_from(jobs[r], raw[r]));
  return outcomes;
}
}  // namespace detail

// Runs parameters[r] with seeds[r] for every r on `device`: outcomes[r] is what
// n_to_1::run_experiment(parameters[r], seeds[r]) returns (integers exactly, doubles to float64
// rounding; see kernels/n_to_1.cu on FMA contraction and device log/sin/cos), timings aside.
inline std::vector<n_to_1::Outcome> run_experiments_on_gpu(int device, const std::vector<n_to_1::Parameters>& parameters,
                                                           const std::vector<uint64_t>& seeds,
                                                           const NTo1Tuning& tuning = {}) {
  const std::vector<NTo1Job> jobs = detail::jobs_of(parameters, seeds);
  return detail::outcomes_of(jobs, run_n_to_1_jobs(device, jobs, tuning));
}

// The same through the host emulation of the kernels (tests on machines without a GPU).
inline std::vector<n_to_1::Outcome> emulate_experiments_on_host(const std::vector<n_to_1::Parameters>& parameters,
                                                                const std::vector<uint64_t>& seeds,
                                                                const NTo1Tuning& tuning = {}) {
  const std::vector<NTo1Job> jobs = detail::jobs_of(parameters, seeds);
  return detail::outcomes_of(jobs, emulate_n_to_1_jobs_on_host(jobs, tuning));
}

}  // namespace causalsweep::cuda
