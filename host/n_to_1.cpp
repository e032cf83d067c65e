// The N-to-1 spiking experiment on the CPU (causalsweep/n_to_1.hpp; specification: N_TO_1_SPEC.md):
// Poisson inputs, conductance synapses, an Izhikevich neuron by forward Euler, imaging noise, and
// the ISI-shuffle test on spike-triggered averages, which is nearly all of a run's time.
#include "causalsweep/n_to_1.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "engine.hpp"

namespace causalsweep::n_to_1 {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Spike-triggered sums: a train's windows stream past lag_chunk accumulators held in registers
// (16 AVX2 vectors), and the window starts are taken time_block samples at a time for every train,
// so that this stretch of the signal is read from L2 by all trains instead of from memory by each.
constexpr int lag_chunk = 64;
constexpr int64_t time_block = 16384;
constexpr int64_t prefetch_ahead = 2;  // windows ahead: L2 latency is the limit, not arithmetic

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The 32-bit words of one Philox stream in order: block 0 words 0..3, block 1, ...
class WordStream {
 public:
  WordStream(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  uint32_t next() {
    if (used_ == 4) {
      block_ = philox_block(seed_, stream_, next_block_++);
      used_ = 0;
    }
    return block_.word[used_++];
  }

 private:
  uint64_t seed_, stream_, next_block_ = 0;
  RandomBlock block_{};
  int used_ = 4;
};

// Fisher-Yates from the top on data[0 .. count): the same swaps for an index array (tests) and for
// the intervals themselves (runs), so both give the same surrogate.
template <class T>
void shuffle_in_place(uint64_t seed, int input, int surrogate, T* data, uint32_t count) {
  WordStream words(seed, subsequence(Purpose::shuffles, static_cast<uint32_t>(input) * 65536u +
                                                            static_cast<uint32_t>(surrogate)));
  for (uint32_t j = count > 0 ? count - 1 : 0; j > 0; --j) {
    uint32_t pick = 0;
    while (!bounded_integer(words.next(), j + 1, pick)) {
      // a word in the biased remainder (probability < (j + 1) / 2^32): take the next one
    }
    std::swap(data[j], data[pick]);
  }
}

// Intervals of a train, the first measured from 0 (a diff with a leading 0).
void intervals_of(const std::vector<double>& spike_times, std::vector<double>& intervals) {
  intervals.resize(spike_times.size());
  double previous = 0;
  for (size_t j = 0; j < spike_times.size(); ++j) {
    intervals[j] = spike_times[j] - previous;
    previous = spike_times[j];
  }
}

int64_t sample_index(double time, double timestep) { return static_cast<int64_t>(std::nearbyint(time / timestep)); }

// Noise of samples [4b, 4b + 4) from block b; calls sink(t, normal) for t < samples.
template <class Sink>
void for_each_noise_sample(uint64_t seed, int64_t samples, Sink&& sink) {
  const uint64_t stream = subsequence(Purpose::imaging_noise, 0);
  for (int64_t b = 0; 4 * b < samples; ++b) {
    const RandomBlock block = philox_block(seed, stream, static_cast<uint64_t>(b));
    double normal[4];
    box_muller(block.word[0], block.word[1], normal[0], normal[1]);
    box_muller(block.word[2], block.word[3], normal[2], normal[3]);
    for (int c = 0; c < 4 && 4 * b + c < samples; ++c) sink(4 * b + c, normal[c]);
  }
}

double ratio(int64_t count, int64_t total) {
  return total > 0 ? static_cast<double>(count) / static_cast<double>(total) : nan;
}

// Window starts of several trains, each sorted and padded with prefetch_ahead copies of its last
// start so that the kernel can read ahead without a bounds check.
class WindowStarts {
 public:
  void clear() {
    starts_.clear();
    begin_.assign(1, 0);
    count_.clear();
  }
  // Appends a train from its sorted, non-negative sample indices, keeping the windows with index + L < samples.
  void add_sorted(const int64_t* indices, size_t count, int64_t samples, int64_t window) {
    const size_t first = starts_.size();
    for (size_t j = 0; j < count && indices[j] + window < samples; ++j) starts_.push_back(indices[j]);
    const size_t windows = starts_.size() - first;
    for (int64_t pad = 0; pad < prefetch_ahead; ++pad) starts_.push_back(windows > 0 ? starts_[first + windows - 1] : 0);
    count_.push_back(static_cast<int64_t>(windows));
    begin_.push_back(starts_.size());
  }
  size_t trains() const { return count_.size(); }
  int64_t windows(size_t train) const { return count_[train]; }
  const int64_t* starts(size_t train) const { return starts_.data() + begin_[train]; }

 private:
  std::vector<int64_t> starts_;
  std::vector<size_t> begin_{0};
  std::vector<int64_t> count_;
};

// acc[k] += sum over the windows of signal[start + lag + k], k < lag_chunk.
void accumulate_lag_chunk(const double* signal, const int64_t* starts, int64_t windows, int64_t lag, double* acc) {
  double local[lag_chunk];
  for (int k = 0; k < lag_chunk; ++k) local[k] = acc[k];
  for (int64_t j = 0; j < windows; ++j) {
    const double* x = signal + starts[j] + lag;
    const auto* ahead = reinterpret_cast<const char*>(signal + starts[j + prefetch_ahead] + lag);
    for (int byte = 0; byte < lag_chunk * static_cast<int>(sizeof(double)); byte += 64) __builtin_prefetch(ahead + byte);
    for (int k = 0; k < lag_chunk; ++k) local[k] += x[k];
  }
  for (int k = 0; k < lag_chunk; ++k) acc[k] = local[k];
}

// Lag layout of a train's sums: chunks of lag_chunk lags; the last chunk starts at L - lag_chunk
// (overlapping its neighbour) so that no read passes the last window's end. A window shorter than
// a chunk is one plain chunk of L lags.
struct LagLayout {
  int64_t window, chunks, stride;
  explicit LagLayout(int64_t window_length)
      : window(window_length),
        chunks(window_length >= lag_chunk ? (window_length + lag_chunk - 1) / lag_chunk : 1),
        stride(window_length >= lag_chunk ? chunks * lag_chunk : window_length) {}
  int64_t chunk_lag(int64_t chunk) const { return std::min(chunk * lag_chunk, window - lag_chunk); }
  // Where lag m of a train's sums is stored.
  int64_t slot(int64_t lag) const {
    if (window < lag_chunk) return lag;
    const int64_t last = (chunks - 1) * lag_chunk;
    return lag < last ? lag : last + lag - (window - lag_chunk);
  }
};

// Sums over every train's windows (train-major, layout.stride per train).
void window_sums(const double* signal, const WindowStarts& trains, const LagLayout& layout,
                 std::vector<double>& sums) {
  const size_t count = trains.trains();
  sums.assign(count * static_cast<size_t>(layout.stride), 0.0);
  if (layout.window < lag_chunk) {  // short windows: no register tiles, a plain sum
    for (size_t r = 0; r < count; ++r)
      for (int64_t j = 0; j < trains.windows(r); ++j)
        for (int64_t m = 0; m < layout.window; ++m) sums[r * layout.stride + m] += signal[trains.starts(r)[j] + m];
    return;
  }
  std::vector<int64_t> done(count, 0);
  for (int64_t block_end = time_block;; block_end += time_block) {
    bool any_left = false;
    for (size_t r = 0; r < count; ++r) {
      const int64_t* starts = trains.starts(r);
      int64_t end = done[r];
      while (end < trains.windows(r) && starts[end] < block_end) ++end;
      double* acc = sums.data() + r * layout.stride;
      if (end > done[r])
        for (int64_t chunk = 0; chunk < layout.chunks; ++chunk)
          accumulate_lag_chunk(signal, starts + done[r], end - done[r], layout.chunk_lag(chunk), acc + chunk * lag_chunk);
      done[r] = end;
      any_left = any_left || end < trains.windows(r);
    }
    if (!any_left) return;
  }
}

// Peak-to-peak heights of the STAs (sum / windows), and the STAs themselves when asked.
void heights_from_sums(const std::vector<double>& sums, const WindowStarts& trains, const LagLayout& layout,
                       std::vector<double>& heights, std::vector<double>* averages) {
  const size_t count = trains.trains();
  heights.assign(count, nan);
  if (averages) averages->assign(count * static_cast<size_t>(layout.window), nan);
  for (size_t r = 0; r < count; ++r) {
    const int64_t windows = trains.windows(r);
    if (windows == 0) continue;
    const double* row = sums.data() + r * layout.stride;
    double lowest = std::numeric_limits<double>::infinity(), highest = -lowest;
    for (int64_t m = 0; m < layout.window; ++m) {
      const double average = row[layout.slot(m)] / static_cast<double>(windows);
      lowest = std::min(lowest, average);
      highest = std::max(highest, average);
      if (averages) (*averages)[r * layout.window + m] = average;
    }
    heights[r] = highest - lowest;
  }
}

void add_imaging_noise(uint64_t seed, double sigma, std::vector<double>& signal) {
  for_each_noise_sample(seed, static_cast<int64_t>(signal.size()),
                        [&](int64_t t, double normal) { signal[t] = signal[t] + sigma * normal; });
}

}  // namespace

int64_t sample_count(const Parameters& parameters) {
  return static_cast<int64_t>(std::nearbyint(parameters.duration / parameters.timestep));
}

int64_t window_samples(const Parameters& parameters) {
  return static_cast<int64_t>(std::nearbyint(parameters.window / parameters.timestep));
}

std::string invalid_reason(const Parameters& p) {
  const auto finite_positive = [](double x) { return std::isfinite(x) && x > 0; };
  const auto fraction = [](double x) { return x >= 0 && x <= 1; };  // false for NaN
  const Izhikevich& n = p.neuron;
  if (!finite_positive(p.timestep)) return fmt::format("timestep must be a number > 0 (got {})", p.timestep);
  if (!finite_positive(p.duration)) return fmt::format("duration must be a number > 0 (got {})", p.duration);
  if (!(p.duration / p.timestep < 1e11))
    return fmt::format("duration / timestep must be below 1e11 samples (got {})", p.duration / p.timestep);
  if (!finite_positive(p.window)) return fmt::format("window must be a number > 0 (got {})", p.window);
  if (window_samples(p) < 1) return fmt::format("window must be at least one timestep (got {})", p.window);
  if (window_samples(p) >= sample_count(p))
    return fmt::format("window ({} s) must be shorter than duration ({} s)", p.window, p.duration);
  if (!finite_positive(p.tau_syn)) return fmt::format("tau_syn must be a number > 0 (got {})", p.tau_syn);
  if (!finite_positive(p.spike_snr)) return fmt::format("spike_snr must be a number > 0 (got {})", p.spike_snr);
  if (p.inputs < 1 || p.inputs >= 65536) return fmt::format("inputs must be an integer in [1, 65535] (got {})", p.inputs);
  if (!fraction(p.p_inhibitory)) return fmt::format("p_inhibitory must be in [0, 1] (got {})", p.p_inhibitory);
  if (!fraction(p.p_connected)) return fmt::format("p_connected must be in [0, 1] (got {})", p.p_connected);
  if (!(p.spike_rate >= 0 && p.spike_rate * p.duration <= 1e9))
    return fmt::format("spike_rate must be >= 0 with spike_rate * duration <= 1e9 (got {})", p.spike_rate);
  if (!(p.dg_exc >= 0 && std::isfinite(p.dg_exc))) return fmt::format("dg_exc must be a number >= 0 (got {})", p.dg_exc);
  if (!(p.dg_inh >= 0 && std::isfinite(p.dg_inh))) return fmt::format("dg_inh must be a number >= 0 (got {})", p.dg_inh);
  if (!std::isfinite(p.v_syn_exc)) return fmt::format("v_syn_exc must be a finite number (got {})", p.v_syn_exc);
  if (!std::isfinite(p.v_syn_inh)) return fmt::format("v_syn_inh must be a finite number (got {})", p.v_syn_inh);
  if (!finite_positive(n.C)) return fmt::format("neuron C must be a number > 0 (got {})", n.C);
  for (const auto& [name, value] : {std::pair{"k", n.k}, {"v_r", n.v_r}, {"v_t", n.v_t}, {"v_peak", n.v_peak},
                                    {"a", n.a}, {"b", n.b}, {"c", n.c}, {"d", n.d}})
    if (!std::isfinite(value)) return fmt::format("neuron {} must be a finite number (got {})", name, value);
  if (!(n.v_peak > n.v_r))
    return fmt::format("neuron v_peak ({}) must be above v_r ({}): the noise is (v_peak - v_r) / spike_snr", n.v_peak, n.v_r);
  if (p.shuffles < 1 || p.shuffles > 65536)
    return fmt::format("shuffles must be an integer in [1, 65536] (got {})", p.shuffles);
  if (!fraction(p.threshold)) return fmt::format("threshold must be in [0, 1] (got {})", p.threshold);
  return {};
}

std::vector<InputLabel> input_labels(const Parameters& p) {
  const auto rounded = [](double x) { return static_cast<int>(std::nearbyint(x)); };  // half to even, as Python's round
  const int inhibitory = rounded(p.p_inhibitory * p.inputs);
  const int excitatory = p.inputs - inhibitory;
  const int inhibitory_connected = rounded(p.p_connected * inhibitory);
  const int excitatory_connected = rounded(p.p_connected * excitatory);
  std::vector<InputLabel> labels(static_cast<size_t>(std::max(p.inputs, 0)));
  for (int i = 0; i < p.inputs; ++i) {
    const bool is_inhibitory = i < inhibitory;
    labels[i] = {is_inhibitory, is_inhibitory ? i < inhibitory_connected : i - inhibitory < excitatory_connected};
  }
  return labels;
}

std::vector<double> poisson_spike_times(uint64_t seed, int input, double rate, double duration) {
  std::vector<double> times;
  times.reserve(static_cast<size_t>(rate * duration + 6 * std::sqrt(rate * duration) + 16));
  WordStream words(seed, subsequence(Purpose::spike_intervals, static_cast<uint32_t>(input)));
  for (double t = exponential_interval(words.next(), rate); t < duration; t += exponential_interval(words.next(), rate))
    times.push_back(t);
  return times;
}

std::vector<int64_t> spike_indices(const std::vector<double>& spike_times, double timestep) {
  std::vector<int64_t> indices(spike_times.size());
  for (size_t j = 0; j < spike_times.size(); ++j) indices[j] = sample_index(spike_times[j], timestep);
  return indices;
}

std::vector<uint32_t> shuffle_permutation(uint64_t seed, int input, int surrogate, uint32_t count) {
  std::vector<uint32_t> permutation(count);
  std::iota(permutation.begin(), permutation.end(), 0u);
  shuffle_in_place(seed, input, surrogate, permutation.data(), count);
  return permutation;
}

std::vector<double> shuffled_spike_times(const std::vector<double>& spike_times, const std::vector<uint32_t>& permutation) {
  std::vector<double> intervals;
  intervals_of(spike_times, intervals);
  std::vector<double> times(permutation.size());
  double t = 0;
  for (size_t j = 0; j < permutation.size(); ++j) times[j] = t = t + intervals[permutation[j]];
  return times;
}

std::vector<double> imaging_noise(uint64_t seed, int64_t samples) {
  std::vector<double> noise(static_cast<size_t>(std::max<int64_t>(samples, 0)));
  for_each_noise_sample(seed, samples, [&](int64_t t, double normal) { noise[t] = normal; });
  return noise;
}

NeuronTrace simulate_neuron(const Parameters& p, const std::vector<std::vector<int64_t>>& input_spikes,
                            bool record_synapses) {
  const int64_t samples = sample_count(p);
  const std::vector<InputLabel> labels = input_labels(p);
  // The model is linear in g, so one running conductance per label replaces the spec's one trace
  // per input: the same sums, up to rounding.
  std::vector<int64_t> exc_events, inh_events;
  for (size_t i = 0; i < std::min(labels.size(), input_spikes.size()); ++i) {
    if (!labels[i].connected) continue;
    auto& events = labels[i].inhibitory ? inh_events : exc_events;
    for (const int64_t index : input_spikes[i])
      if (index >= 0 && index < samples) events.push_back(index);
  }
  std::sort(exc_events.begin(), exc_events.end());
  std::sort(inh_events.begin(), inh_events.end());

  NeuronTrace trace;
  trace.v.resize(static_cast<size_t>(samples));
  if (record_synapses) {
    trace.g_exc.resize(trace.v.size());
    trace.g_inh.resize(trace.v.size());
    trace.i_syn.resize(trace.v.size());
  }
  const Izhikevich& n = p.neuron;
  const double dt = p.timestep;
  double g_exc = 0, g_inh = 0, v = n.v_r, u = 0, i_syn = 0;
  size_t next_exc = 0, next_inh = 0;
  for (int64_t t = 0; t < samples; ++t) {
    if (t > 0) {
      g_exc = g_exc + dt * (-g_exc / p.tau_syn);
      g_inh = g_inh + dt * (-g_inh / p.tau_syn);
    }
    for (; next_exc < exc_events.size() && exc_events[next_exc] == t; ++next_exc) g_exc += p.dg_exc;
    for (; next_inh < inh_events.size() && inh_events[next_inh] == t; ++next_inh) g_inh += p.dg_inh;
    if (t > 0) {
      // Both derivatives from the values at t - 1, I_syn[t - 1] included.
      const double dv_dt = (n.k * (v - n.v_r) * (v - n.v_t) - u - i_syn) / n.C;
      const double du_dt = n.a * (n.b * (v - n.v_r) - u);
      v = v + dt * dv_dt;
      u = u + dt * du_dt;
      if (v >= n.v_peak) {
        trace.spikes.push_back(t);
        trace.v[t - 1] = n.v_peak;  // the cosmetic peak, written after I_syn[t - 1] used the real v
        v = n.c;
        u += n.d;
      }
    }
    trace.v[t] = v;
    // Inhibitory inputs have the lower indices: the spec's sum in index order.
    i_syn = g_inh * (v - p.v_syn_inh) + g_exc * (v - p.v_syn_exc);
    if (record_synapses) {
      trace.g_exc[t] = g_exc;
      trace.g_inh[t] = g_inh;
      trace.i_syn[t] = i_syn;
    }
  }
  return trace;
}

SpikeTriggeredAverages spike_triggered_averages(const std::vector<double>& signal,
                                                const std::vector<std::vector<int64_t>>& trains,
                                                int64_t window, bool keep_averages) {
  SpikeTriggeredAverages result;
  const auto samples = static_cast<int64_t>(signal.size());
  if (window < 1) return result;
  WindowStarts starts;
  std::vector<int64_t> sorted;
  for (const auto& train : trains) {
    sorted = train;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(sorted.begin(), std::lower_bound(sorted.begin(), sorted.end(), 0));
    starts.add_sorted(sorted.data(), sorted.size(), samples, window);
    result.windows.push_back(starts.windows(starts.trains() - 1));
  }
  const LagLayout layout(window);
  std::vector<double> sums;
  window_sums(signal.data(), starts, layout, sums);
  heights_from_sums(sums, starts, layout, result.heights, keep_averages ? &result.averages : nullptr);
  return result;
}

InputTest shuffle_test(double height, const std::vector<double>& surrogate_heights) {
  InputTest test;
  test.height = height;
  const auto shuffles = static_cast<int>(surrogate_heights.size());
  double sum = 0;
  for (const double h : surrogate_heights) {
    test.exceed += h > height;
    sum += h;
  }
  test.relative_height = height / (sum / shuffles);
  if (std::isnan(height)) {
    test.p_value = 1;  // no window: nothing beats NaN, but nothing was measured either
  } else if (test.exceed == 0) {
    test.p_value = 1.0 / shuffles;
    test.p_upper_bound = true;
  } else {
    test.p_value = static_cast<double>(test.exceed) / shuffles;
  }
  return test;
}

void evaluate(Outcome& outcome, double threshold) {
  const std::vector<InputTest>& inputs = outcome.inputs;
  int64_t connected_exc = 0, connected_inh = 0, unconnected = 0;
  for (const InputTest& in : inputs) {
    connected_exc += in.connected && !in.inhibitory;
    connected_inh += in.connected && in.inhibitory;
    unconnected += !in.connected;
  }
  // Classified as connected where p <= threshold, as the original code compares (spec §10).
  const auto at = [&](double level) {
    int64_t tp_exc = 0, tp_inh = 0, fp = 0;
    for (const InputTest& in : inputs) {
      if (!(in.p_value <= level)) continue;
      tp_exc += in.connected && !in.inhibitory;
      tp_inh += in.connected && in.inhibitory;
      fp += !in.connected;
    }
    return RocPoint{level, ratio(fp, unconnected), ratio(tp_exc + tp_inh, connected_exc + connected_inh),
                    ratio(tp_exc, connected_exc), ratio(tp_inh, connected_inh)};
  };
  const RocPoint fixed = at(threshold);
  outcome.tpr = fixed.tpr;
  outcome.tpr_exc = fixed.tpr_exc;
  outcome.tpr_inh = fixed.tpr_inh;
  outcome.fpr = fixed.fpr;

  std::vector<double> thresholds{0.0};
  for (const InputTest& in : inputs) thresholds.push_back(in.p_value);
  std::sort(thresholds.begin(), thresholds.end());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  outcome.roc.clear();
  for (const double level : thresholds) outcome.roc.push_back(at(level));
  // Left-endpoint steps in threshold order, not trapezoids: ties count against the classifier.
  outcome.auc = outcome.auc_exc = outcome.auc_inh = 0;
  for (size_t i = 0; i + 1 < outcome.roc.size(); ++i) {
    const double step = outcome.roc[i + 1].fpr - outcome.roc[i].fpr;
    outcome.auc += step * outcome.roc[i].tpr;
    outcome.auc_exc += step * outcome.roc[i].tpr_exc;
    outcome.auc_inh += step * outcome.roc[i].tpr_inh;
  }
}

Outcome run_experiment(const Parameters& p, uint64_t seed) {
  if (const std::string reason = invalid_reason(p); !reason.empty()) throw std::invalid_argument(reason);
  Outcome outcome;
  const auto simulate_start = std::chrono::steady_clock::now();
  const int64_t samples = sample_count(p), window = window_samples(p);
  const std::vector<InputLabel> labels = input_labels(p);
  std::vector<std::vector<double>> times(labels.size());
  std::vector<std::vector<int64_t>> indices(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    times[i] = poisson_spike_times(seed, static_cast<int>(i), p.spike_rate, p.duration);
    indices[i] = spike_indices(times[i], p.timestep);
  }
  NeuronTrace trace = simulate_neuron(p, indices);
  outcome.output_spikes = static_cast<int64_t>(trace.spikes.size());
  outcome.output_rate = static_cast<double>(outcome.output_spikes) / p.duration;
  std::vector<double> signal = std::move(trace.v);
  add_imaging_noise(seed, (p.neuron.v_peak - p.neuron.v_r) / p.spike_snr, signal);
  outcome.simulate_seconds = seconds_since(simulate_start);

  const auto test_start = std::chrono::steady_clock::now();
  const LagLayout layout(window);
  WindowStarts trains;
  std::vector<double> intervals, shuffled, sums, heights, surrogate_heights;
  std::vector<int64_t> surrogate_indices;
  for (size_t i = 0; i < labels.size(); ++i) {
    // Train 0 is the real one, trains 1 .. shuffles its surrogates.
    trains.clear();
    trains.add_sorted(indices[i].data(), indices[i].size(), samples, window);
    intervals_of(times[i], intervals);
    surrogate_indices.resize(intervals.size());
    for (int s = 0; s < p.shuffles; ++s) {
      shuffled = intervals;
      shuffle_in_place(seed, static_cast<int>(i), s, shuffled.data(), static_cast<uint32_t>(shuffled.size()));
      double t = 0;
      for (size_t j = 0; j < shuffled.size(); ++j) surrogate_indices[j] = sample_index(t = t + shuffled[j], p.timestep);
      trains.add_sorted(surrogate_indices.data(), surrogate_indices.size(), samples, window);
    }
    window_sums(signal.data(), trains, layout, sums);
    heights_from_sums(sums, trains, layout, heights, nullptr);
    surrogate_heights.assign(heights.begin() + 1, heights.end());
    InputTest test = shuffle_test(heights[0], surrogate_heights);
    test.inhibitory = labels[i].inhibitory;
    test.connected = labels[i].connected;
    test.spikes = static_cast<int64_t>(times[i].size());
    test.windows = trains.windows(0);
    outcome.inputs.push_back(test);
  }
  evaluate(outcome, p.threshold);
  outcome.test_seconds = seconds_since(test_start);
  return outcome;
}

double run_cost(const Parameters& p) {
  // Multiply-add equivalents at the engine's nominal 4e9 per second and thread, from measured
  // times: an STA addition ~0.3, a simulated and noised sample ~110, a shuffled spike ~25.
  const double samples = p.duration / p.timestep, window = p.window / p.timestep;
  const double spikes = p.spike_rate * p.duration;
  const double windows = p.spike_rate * std::max(p.duration - p.window, 0.0);
  const double trains = static_cast<double>(p.inputs) * (p.shuffles + 1);
  return 0.3 * trains * windows * window + 110 * samples + 25 * trains * spikes;
}

uint64_t run_memory_bytes(const Parameters& p) {
  const double samples = p.duration / p.timestep, window = p.window / p.timestep;
  const double spikes = p.spike_rate * p.duration + 6 * std::sqrt(p.spike_rate * p.duration) + 16;
  // The signal, every input's times and indices, the connected events, and one input's test:
  // the trains' window starts, their sums and the shuffled intervals.
  const double bytes = 8 * samples + 8 * (3.0 * p.inputs * spikes) +
                       8 * (p.shuffles + 1.0) * (spikes + prefetch_ahead + window + lag_chunk) + 8 * 3 * spikes;
  return static_cast<uint64_t>(bytes) + (1u << 20);
}

}  // namespace causalsweep::n_to_1
