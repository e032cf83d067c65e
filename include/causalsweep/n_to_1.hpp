#pragma once
// The N-to-1 spiking experiment (voltage-to-wiring, 2021-11-05 "Vary I/E synaptic conductances"):
// N Poisson inputs drive one Izhikevich neuron through conductance synapses; from its noisy voltage
// and the input spike times, a shuffle test on spike-triggered averages decides which inputs are
// connected. Everything is in SI base units (s, V, S, A, F), as in the original code.
//
// Random numbers come from the same Philox streams as the rate model (Purpose::spike_intervals,
// imaging_noise, shuffles in random_stream.hpp), so a run depends only on its parameters and seed.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "causalsweep/hd.hpp"
#include "causalsweep/random_stream.hpp"

namespace causalsweep::n_to_1 {

// Izhikevich (2007) cortical regular-spiking cell.
struct Izhikevich {
  double C = 100e-12;     // capacitance (F)
  double k = 0.7e-6;      // quadratic I-V coefficient (A/V^2; 0.7 nS/mV)
  double v_r = -0.060;    // resting potential (V)
  double v_t = -0.040;    // instantaneous threshold (V)
  double v_peak = 0.035;  // spike cut-off (V)
  double a = 30;          // 1 / time constant of u (1/s)
  double b = -2e-9;       // coupling of u to v (S)
  double c = -0.050;      // reset potential (V)
  double d = 100e-12;     // jump of u at each spike (A)
};

struct Parameters {
  double duration = 600;        // simulated time (s)
  double timestep = 1e-4;       // forward-Euler step dt (s)
  double tau_syn = 7e-3;        // synaptic conductance decay (s), E and I alike
  double spike_snr = 20;        // imaging noise: sigma = (v_peak - v_r) / spike_snr
  double window = 0.1;          // STA window after each input spike (s)
  int inputs = 30;              // N presynaptic spike trains, all tested
  double p_inhibitory = 0.2;    // fraction labelled inhibitory (rounded half to even)
  double p_connected = 0.7;     // fraction connected within each label (rounded half to even)
  double spike_rate = 20;       // Poisson rate of each input (Hz)
  double dg_exc = 0.4e-9;       // conductance step per excitatory spike (S)
  double dg_inh = 1.6e-9;       // conductance step per inhibitory spike (S)
  double v_syn_exc = 0.0;       // excitatory reversal potential (V)
  double v_syn_inh = -0.065;    // inhibitory reversal potential (V)
  Izhikevich neuron;
  int shuffles = 100;           // ISI-shuffled surrogates per input
  double threshold = 0.05;      // an input is declared connected where p <= threshold
};

// Why a run's parameters cannot be simulated (empty when they can), naming the field.
std::string invalid_reason(const Parameters& parameters);

// The connection test of one input.
struct InputTest {
  bool inhibitory = false, connected = false;
  int64_t spikes = 0;          // spikes of the input train
  int64_t windows = 0;         // STA windows that fit before the end of the recording
  int exceed = 0;              // K: surrogates whose STA height is strictly greater than the real one
  double p_value = 0;          // K / shuffles, or 1 / shuffles with p_upper_bound when K = 0 (1 without windows)
  bool p_upper_bound = false;  // the spec's p_value_type "<"
  double height = 0;           // peak-to-peak of the real STA (V)
  double relative_height = 0;  // height / mean surrogate height
};

// One threshold of the ROC sweep (thresholds: 0 and every distinct p-value, ascending).
struct RocPoint {
  double threshold = 0, fpr = 0, tpr = 0, tpr_exc = 0, tpr_inh = 0;
};

struct Outcome {
  std::vector<InputTest> inputs;
  int64_t output_spikes = 0;
  double output_rate = 0;                  // output spikes / duration (Hz)
  double tpr = 0, tpr_exc = 0, tpr_inh = 0, fpr = 0;  // at p <= threshold; NaN with an empty denominator
  double auc = 0, auc_exc = 0, auc_inh = 0;            // left-endpoint step rule over the ROC sweep
  std::vector<RocPoint> roc;
  double simulate_seconds = 0, test_seconds = 0;       // time in the simulation and in the STA tests
};

// One run: generate the inputs, simulate, add imaging noise, test every input, evaluate.
Outcome run_experiment(const Parameters& parameters, uint64_t seed);

// Rough operation count of one run (simulation plus STAs), for plans, shards and progress.
double run_cost(const Parameters& parameters);

// Memory one run needs (signals, spike trains, STAs), in bytes.
uint64_t run_memory_bytes(const Parameters& parameters);

// ---- The steps of run_experiment, exposed for the tests (which feed them a reference's data) ----

// Samples of the recording, T = round(duration / timestep), and of an STA window, L = round(window / timestep).
int64_t sample_count(const Parameters& parameters);
int64_t window_samples(const Parameters& parameters);

// Labels by index (spec §5): inhibitory inputs first, the first round(p_connected * count) of each
// label connected, every count rounded half to even.
struct InputLabel {
  bool inhibitory = false, connected = false;
};
std::vector<InputLabel> input_labels(const Parameters& parameters);

// One exponential inter-spike interval (s) from one random word.
CS_HD inline double exponential_interval(uint32_t word, double rate) { return -log(uniform_open01(word)) / rate; }

// Lemire's multiply-and-reject: a uniform integer in [0, range) from one word, or false when the
// word falls in the biased part and the next word must be tried. range >= 1.
CS_HD inline bool bounded_integer(uint32_t word, uint32_t range, uint32_t& value) {
  const uint64_t product = static_cast<uint64_t>(word) * range;
  const auto low = static_cast<uint32_t>(product);
  if (low < range && low < (0u - range) % range) return false;
  value = static_cast<uint32_t>(product >> 32);
  return true;
}

// Spike times (s) of input `input`: running sums of exponential intervals (Purpose::spike_intervals),
// those strictly before `duration`.
std::vector<double> poisson_spike_times(uint64_t seed, int input, double rate, double duration);

// Sample index of each spike, round(t / timestep) with ties to even.
std::vector<int64_t> spike_indices(const std::vector<double>& spike_times, double timestep);

// The permutation of `count` inter-spike intervals for surrogate `surrogate` of input `input`
// (Purpose::shuffles): Fisher-Yates from the top; surrogate interval j is original interval permutation[j].
std::vector<uint32_t> shuffle_permutation(uint64_t seed, int input, int surrogate, uint32_t count);

// Spike times rebuilt from the train's intervals (the first measured from 0) in permuted order.
std::vector<double> shuffled_spike_times(const std::vector<double>& spike_times, const std::vector<uint32_t>& permutation);

// Standard normal imaging noise of `samples` samples (Purpose::imaging_noise, two Box-Muller pairs per block).
std::vector<double> imaging_noise(uint64_t seed, int64_t samples);

// The neuron driven by the connected inputs' spikes (sample indices, one list per input; indices
// >= T are never applied). Samples: sample_count(parameters).
struct NeuronTrace {
  std::vector<double> v;         // membrane potential (V); the sample before each reset holds v_peak
  std::vector<int64_t> spikes;   // output spike samples
  std::vector<double> g_exc, g_inh, i_syn;  // per sample (S, S, A), only when record_synapses is set
};
NeuronTrace simulate_neuron(const Parameters& parameters, const std::vector<std::vector<int64_t>>& input_spikes,
                            bool record_synapses = false);

// Spike-triggered averages of `signal` over windows [s, s + L) with 0 <= s and s + L < signal size,
// for several trains of sample indices at once.
struct SpikeTriggeredAverages {
  std::vector<int64_t> windows;  // per train
  std::vector<double> heights;   // per train: max - min of its STA; NaN without windows
  std::vector<double> averages;  // train-major, L values per train; only when keep_averages is set
};
SpikeTriggeredAverages spike_triggered_averages(const std::vector<double>& signal,
                                                const std::vector<std::vector<int64_t>>& trains,
                                                int64_t window_samples, bool keep_averages = false);

// The shuffle test from the real STA height and the surrogates' (sets exceed, p_value,
// p_upper_bound, height, relative_height). A real train without windows has p = 1: no evidence.
InputTest shuffle_test(double height, const std::vector<double>& surrogate_heights);

// TPR / FPR at `threshold`, the ROC sweep and the AUCs of outcome.inputs (labels and p-values).
void evaluate(Outcome& outcome, double threshold);

}  // namespace causalsweep::n_to_1
