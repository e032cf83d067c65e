#pragma once
// Model families beside the built-in rate network. A family is one source file that describes its
// parameters (every one a [model] key and a sweepable axis), how one run is simulated and scored on
// the CPU, and what a run costs; config parsing, the grid, sharding, resume, outputs, curves and plots
// are shared with the rate model. To add a model: write host/family_<name>.cpp implementing
// ModelFamily and add it to the list in host/model_family.cpp.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace causalsweep {

struct NetworkTask;
struct SweepGrid;
struct NetworkResult;
struct PhaseTimes;
struct EstimatorSpec;

// One parameter of a family: its [model] key (also its column in the outputs), its value when the
// config leaves it out, and the values it may take.
struct ModelParameter {
  std::string_view key;          // e.g. "dg_exc_ns"
  std::string_view description;  // one line, with the unit: axis labels and `plan`
  double fallback;               // default in the key's unit; NaN: derived from other keys when absent
  double lo, hi;                 // allowed range
  bool lo_open, hi_open;
  bool integer;                  // must be an integer (and is read as one)
  std::string_view allowed;      // how messages describe the range, e.g. "a number > 0"
  std::string_view excludes = {};  // a key that may not be given together with this one
};

class ModelFamily {
 public:
  virtual ~ModelFamily() = default;
  virtual std::string_view name() const = 0;  // [model] family = "<name>"
  virtual const std::vector<ModelParameter>& parameters() const = 0;
  // The estimator methods (names as in config) this family runs; the first is the default `use`.
  virtual std::vector<std::string_view> methods() const = 0;
  // Why a combination of parameter values (one per parameters(), in order) cannot run, naming the
  // keys; empty when it can. Checked for every grid point when the config is read.
  virtual std::string invalid_reason(const std::vector<double>& values) const = 0;
  // Rough operation count and memory of one run, for plans, shards and progress.
  virtual double cost(const NetworkTask& task, const SweepGrid& grid) const = 0;
  virtual uint64_t memory_bytes(const NetworkTask& task, const SweepGrid& grid) const = 0;
  // One run on the CPU (single-threaded: the backend runs several at once), all its estimators.
  virtual NetworkResult run_on_cpu(const NetworkTask& task, const SweepGrid& grid, PhaseTimes& times) const = 0;
  // The family's CUDA path, where this build has one: every run of `batch` on `device`, results in
  // batch order, equal to run_on_cpu's. Families without one run on the CPU backend.
  virtual bool has_cuda_path() const { return false; }
  virtual std::vector<NetworkResult> run_on_cuda(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                                 int device, PhaseTimes& times) const;
};

// The family called `name`, or nullptr (the rate model, "rate", is built in and has no entry).
const ModelFamily* find_model_family(std::string_view name);

// Names accepted by [model] family: "rate" and every registered family.
std::vector<std::string_view> model_family_names();

const ModelFamily& n_to_1_family();  // host/family_n_to_1.cpp

// Every combination of the axes' values (the first axis varies slowest), one value per axis.
std::vector<std::vector<double>> parameter_points(const std::vector<std::vector<double>>& axes);

}  // namespace causalsweep
