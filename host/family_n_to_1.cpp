// The n_to_1 spiking experiment as a model family of the engine: its [model] keys (in the units the
// notebook writes them), their mapping to n_to_1::Parameters (SI), and one run's scores.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <span>
#include <stdexcept>

#include <fmt/format.h>

#include "causalsweep/flags.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/model_family.hpp"
#include "causalsweep/n_to_1.hpp"
#include "causalsweep/results.hpp"
#ifdef CAUSALSWEEP_HAVE_CUDA
#include "n_to_1_cuda.hpp"
#endif

namespace causalsweep {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double derived = std::numeric_limits<double>::quiet_NaN();  // absent: computed from other keys

// Indices into the parameter list below (and into a task's parameter values).
enum Key : int {
  duration_s, timestep_ms, tau_syn_ms, spike_snr, window_ms, inputs, p_inhibitory, p_connected, spike_rate_hz,
  dg_exc_ns, dg_inh_ns, inh_exc_ratio, v_syn_exc_mv, v_syn_inh_mv, izh_c_pf, izh_k_ns_per_mv, izh_v_r_mv,
  izh_v_t_mv, izh_v_peak_mv, izh_a_per_ms, izh_b_ns, izh_c_mv, izh_d_pa, key_count
};

constexpr std::string_view positive = "a finite number > 0";
constexpr std::string_view finite = "a finite number";

const std::vector<ModelParameter>& parameter_list() {
  static const std::vector<ModelParameter> list = {
      {"duration_s", "simulated time (s)", 600, 0, 86400, true, false, false, "a number in (0, 86400]"},
      {"timestep_ms", "forward-Euler step dt (ms)", 0.1, 0, 10, true, false, false, "a number in (0, 10]"},
      {"tau_syn_ms", "synaptic conductance decay (ms)", 7, 0, inf, true, true, false, positive},
      {"spike_snr", "imaging spike SNR: (v_peak - v_r) / noise std", 20, 0, inf, true, true, false, positive},
      {"window_ms", "STA window after each input spike (ms)", 100, 0, inf, true, true, false, positive},
      {"inputs", "presynaptic spike trains N", 30, 1, 65535, false, false, true, "an integer in [1, 65535]"},
      {"p_inhibitory", "fraction of inputs labelled inhibitory", 0.2, 0, 1, false, false, false, "a number in [0, 1]"},
      {"p_connected", "fraction connected within each label", 0.7, 0, 1, false, false, false, "a number in [0, 1]"},
      {"spike_rate_hz", "Poisson rate of each input (Hz)", 20, 0, 1000, true, false, false, "a number in (0, 1000]"},
      {"dg_exc_ns", "conductance step per excitatory spike (nS)", 0.4, 0, inf, false, true, false,
       "a finite number >= 0"},
      {"dg_inh_ns", "conductance step per inhibitory spike (nS; default 1.6)", derived, 0, inf, false, true, false,
       "a finite number >= 0", "inh_exc_ratio"},
      {"inh_exc_ratio", "conductance ratio dg_inh / dg_exc", derived, 0, inf, false, true, false,
       "a finite number >= 0", "dg_inh_ns"},
      {"v_syn_exc_mv", "excitatory reversal potential (mV)", 0, -inf, inf, true, true, false, finite},
      {"v_syn_inh_mv", "inhibitory reversal potential (mV)", -65, -inf, inf, true, true, false, finite},
      {"izh_c_pf", "Izhikevich capacitance C (pF)", 100, 0, inf, true, true, false, positive},
      {"izh_k_ns_per_mv", "Izhikevich k (nS/mV)", 0.7, 0, inf, true, true, false, positive},
      {"izh_v_r_mv", "Izhikevich resting potential v_r (mV)", -60, -inf, inf, true, true, false, finite},
      {"izh_v_t_mv", "Izhikevich threshold v_t (mV)", -40, -inf, inf, true, true, false, finite},
      {"izh_v_peak_mv", "Izhikevich spike cut-off v_peak (mV)", 35, -inf, inf, true, true, false, finite},
      {"izh_a_per_ms", "Izhikevich recovery rate a (1/ms)", 0.03, 0, inf, true, true, false, positive},
      {"izh_b_ns", "Izhikevich coupling b (nS)", -2, -inf, inf, true, true, false, finite},
      {"izh_c_mv", "Izhikevich reset potential c (mV)", -50, -inf, inf, true, true, false, finite},
      {"izh_d_pa", "Izhikevich reset jump d (pA)", 100, -inf, inf, true, true, false, finite},
  };
  return list;
}

// Config units to SI: the notebook's own conversions (ms = 1e-3, nS = 1e-9, pA = 1e-12, pF = 1e-12).
n_to_1::Parameters to_parameters(const std::vector<double>& v) {
  n_to_1::Parameters p;
  p.duration = v[duration_s];
  p.timestep = v[timestep_ms] * 1e-3;
  p.tau_syn = v[tau_syn_ms] * 1e-3;
  p.spike_snr = v[spike_snr];
  p.window = v[window_ms] * 1e-3;
  p.inputs = static_cast<int>(v[inputs]);
  p.p_inhibitory = v[p_inhibitory];
  p.p_connected = v[p_connected];
  p.spike_rate = v[spike_rate_hz];
  p.dg_exc = v[dg_exc_ns] * 1e-9;
  // dg_inh_ns and inh_exc_ratio exclude each other; with neither, the notebook's 1.6 nS.
  p.dg_inh = !std::isnan(v[inh_exc_ratio]) ? v[inh_exc_ratio] * p.dg_exc
             : !std::isnan(v[dg_inh_ns])   ? v[dg_inh_ns] * 1e-9
                                           : 1.6e-9;
  p.v_syn_exc = v[v_syn_exc_mv] * 1e-3;
  p.v_syn_inh = v[v_syn_inh_mv] * 1e-3;
  p.neuron.C = v[izh_c_pf] * 1e-12;
  p.neuron.k = v[izh_k_ns_per_mv] * 1e-6;  // nS/mV = 1e-9 S / 1e-3 V
  p.neuron.v_r = v[izh_v_r_mv] * 1e-3;
  p.neuron.v_t = v[izh_v_t_mv] * 1e-3;
  p.neuron.v_peak = v[izh_v_peak_mv] * 1e-3;
  p.neuron.a = v[izh_a_per_ms] * 1e3;
  p.neuron.b = v[izh_b_ns] * 1e-9;
  p.neuron.c = v[izh_c_mv] * 1e-3;
  p.neuron.d = v[izh_d_pa] * 1e-12;
  return p;
}

n_to_1::Parameters with_test(n_to_1::Parameters p, const EstimatorSpec& spec) {
  p.shuffles = spec.shuffles;
  p.threshold = spec.threshold >= 0 ? spec.threshold : 0.05;
  return p;
}

// One run's scores (estimator e) as the engine stores them.
RunResult to_run(const n_to_1::Outcome& outcome, int estimator, int inputs, bool keep_roc) {
  RunResult run;
  run.ratio_index = 0;
  run.observed = inputs;  // every input is observed and tested
  run.estimator_index = estimator;
  run.scored = 0;
  run.set(score_tpr, outcome.tpr);
  run.set(score_fpr, outcome.fpr);
  run.set(score_auc, outcome.auc);
  run.set(score_tpr_exc, outcome.tpr_exc);
  run.set(score_tpr_inh, outcome.tpr_inh);
  run.set(score_auc_exc, outcome.auc_exc);
  run.set(score_auc_inh, outcome.auc_inh);
  run.set(score_output_rate, outcome.output_rate);
  for (double rate : {outcome.tpr, outcome.tpr_exc, outcome.tpr_inh, outcome.fpr})
    if (std::isnan(rate)) run.flags |= flag_empty_class;
  for (const n_to_1::InputTest& input : outcome.inputs)
    if (input.windows == 0) run.flags |= flag_no_windows;
  if (keep_roc)
    for (const n_to_1::RocPoint& point : outcome.roc) run.roc.push_back({point.fpr, point.tpr, point.threshold});
  return run;
}

class NTo1Family final : public ModelFamily {
 public:
  std::string_view name() const override { return "n_to_1"; }
  const std::vector<ModelParameter>& parameters() const override { return parameter_list(); }
  std::vector<std::string_view> methods() const override { return {"sta_shuffle"}; }

  std::string invalid_reason(const std::vector<double>& values) const override {
    return n_to_1::invalid_reason(to_parameters(values));
  }

  double cost(const NetworkTask& task, const SweepGrid& grid) const override {
    const n_to_1::Parameters p = to_parameters(task.parameters);
    double total = 0;
    for (const EstimatorSpec& spec : grid.estimators) total += n_to_1::run_cost(with_test(p, spec));
    return total;
  }

  uint64_t memory_bytes(const NetworkTask& task, const SweepGrid&) const override {
    return n_to_1::run_memory_bytes(to_parameters(task.parameters));
  }

  NetworkResult run_on_cpu(const NetworkTask& task, const SweepGrid& grid, PhaseTimes& times) const override {
    NetworkResult result;
    result.network_index = task.index;
    const n_to_1::Parameters parameters = to_parameters(task.parameters);
    for (size_t e = 0; e < grid.estimators.size(); ++e) {
      const n_to_1::Outcome outcome = n_to_1::run_experiment(with_test(parameters, grid.estimators[e]), task.seed);
      times.simulate += outcome.simulate_seconds;
      times.solve += outcome.test_seconds;  // the connection test is this family's estimation phase
      result.runs.push_back(to_run(outcome, static_cast<int>(e), parameters.inputs, grid.keeps_roc(task.seed)));
    }
    return result;
  }

#ifdef CAUSALSWEEP_HAVE_CUDA
  bool has_cuda_path() const override { return true; }

  // Once per device and process: a short run (2 s, 8 inputs, 20 surrogates) on the GPU must give the
  // CPU's p-values and scores before a sweep trusts the device with its runs.
  static void self_check(int device) {
    static std::mutex mutex;
    static std::vector<int> checked;
    const std::lock_guard lock(mutex);
    if (std::find(checked.begin(), checked.end(), device) != checked.end()) return;
    n_to_1::Parameters p;
    p.duration = 2;
    p.inputs = 8;
    p.shuffles = 20;
    const uint64_t seed = 20211105;
    const n_to_1::Outcome want = n_to_1::run_experiment(p, seed);
    const n_to_1::Outcome got = cuda::run_experiments_on_gpu(device, {p}, {seed}).at(0);
    bool same = want.output_spikes == got.output_spikes && want.inputs.size() == got.inputs.size();
    for (size_t i = 0; same && i < want.inputs.size(); ++i)
      same = want.inputs[i].exceed == got.inputs[i].exceed && want.inputs[i].spikes == got.inputs[i].spikes;
    for (auto [a, b] : {std::pair{want.fpr, got.fpr}, {want.tpr, got.tpr}, {want.auc, got.auc}})
      same = same && ((std::isnan(a) && std::isnan(b)) || a == b);
    if (!same)
      throw std::runtime_error(fmt::format("n_to_1 on CUDA: self-check on device {} failed (output spikes {} on the GPU, "
                                           "{} on the CPU; fpr {} vs {}); use --backend cpu",
                                           device, got.output_spikes, want.output_spikes, got.fpr, want.fpr));
    checked.push_back(device);
  }

  // Every (run, estimator) of the batch in one call: the device takes as many runs at once as fit.
  std::vector<NetworkResult> run_on_cuda(std::span<const NetworkTask> batch, const SweepGrid& grid, int device,
                                         PhaseTimes& times) const override {
    std::string why;
    if (!cuda::n_to_1_kernels_runnable(device, why)) throw std::runtime_error("n_to_1 on CUDA: " + why);
    self_check(device);
    std::vector<n_to_1::Parameters> jobs;
    std::vector<uint64_t> seeds;
    for (const NetworkTask& task : batch)
      for (const EstimatorSpec& spec : grid.estimators) {
        jobs.push_back(with_test(to_parameters(task.parameters), spec));
        seeds.push_back(task.seed);
      }
    const std::vector<n_to_1::Outcome> outcomes = cuda::run_experiments_on_gpu(device, jobs, seeds);
    std::vector<NetworkResult> results(batch.size());
    size_t next = 0;
    for (size_t t = 0; t < batch.size(); ++t) {
      results[t].network_index = batch[t].index;
      for (size_t e = 0; e < grid.estimators.size(); ++e, ++next) {
        times.simulate += outcomes[next].simulate_seconds;
        times.solve += outcomes[next].test_seconds;
        results[t].runs.push_back(
            to_run(outcomes[next], static_cast<int>(e), jobs[next].inputs, grid.keeps_roc(batch[t].seed)));
      }
    }
    return results;
  }
#endif
};

}  // namespace

const ModelFamily& n_to_1_family() {
  static const NTo1Family family;
  return family;
}

}  // namespace causalsweep
