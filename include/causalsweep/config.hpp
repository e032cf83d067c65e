#pragma once
// A sweep described by a TOML config: the model axes, the seeds, the estimators and how to run.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "causalsweep/model.hpp"

namespace causalsweep {

// Bad input from the user (config, flags, data files). The CLI prints what() and exits 2.
// The message names the source, the line, the key, the value and what is allowed.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How the lasso is solved. Both minimise scikit-learn's objective and stop on its duality gap.
enum class LassoSolver {
  active_set,  // feature-sign search: exact on its support, converges where cyclic descent stalls
  cyclic,      // scikit-learn's cyclic coordinate descent, iterate for iterate (the notebook's numbers)
};

std::string_view to_string(LassoSolver solver);

// sta_shuffle is the n_to_1 family's connection test (spike-triggered averages against ISI-shuffled
// surrogates); the others belong to the rate model.
enum class EstimatorMethod { correlation, perturbation, ols, lasso, iv, granger, granger_conditional, sta_shuffle };

// Multiple-comparison correction of the decisions over one run's k x k tests.
enum class Correction { none, bonferroni, bh };
std::string_view to_string(Correction correction);

std::string_view to_string(Nonlinearity nonlinearity);  // Nonlinearity: causalsweep/model.hpp

std::string_view to_string(EstimatorMethod method);

// One estimator of the sweep. `label` is what outputs call it ("lasso", "lasso_intercept", ...);
// several labels may share a method with different options.
struct EstimatorSpec {
  std::string label;
  EstimatorMethod method = EstimatorMethod::correlation;
  bool intercept = false;  // ols, lasso: fit an intercept (scikit-learn's fit_intercept)
  double alpha = 0.01;     // lasso: scikit-learn's alpha
  double tol = 1e-4;       // lasso: stop when the duality gap < tol * y'y (scikit-learn's rule)
  int max_iter = 1000;     // lasso: iterations (sweeps, for cyclic) before giving up (flagged)
  LassoSolver solver = LassoSolver::active_set;  // lasso
  // Decisions (tpr, fpr): estimators with p-values (ols, iv, granger*) declare p below `level`
  // (config key "alpha" for these methods) after `correction`; the others declare |V| > threshold
  // (lasso: 0, its selection; correlation and perturbation: no decisions unless a threshold is given).
  double level = 0.05;
  Correction correction = Correction::none;
  double threshold = -1;   // < 0: the method's default (see above); sta_shuffle: declared where p <= threshold
  int shuffles = 100;      // sta_shuffle: ISI-shuffled surrogates per input
};

// The swept model axes. Every list is non-empty; the sweep is their Cartesian product with seeds.
struct SweepAxes {
  std::vector<int> n_neurons;
  std::vector<int> timesteps;
  std::vector<double> p_connect;
  std::vector<double> eta;             // instrument strength
  std::vector<double> observed_ratio;  // fraction of neurons observed, in (0, 1]
  std::vector<uint64_t> seeds;
  bool perturb = false;                // Tutorial 1's perturbation mode (clamp x at every even t)
  // Other model families (model_family.hpp): the values of each of the family's parameters, in
  // its order and the key's unit. The rate model's lists above are then unused (seeds aside).
  std::vector<std::vector<double>> parameters;
};

// Model settings that are not swept axes.
struct ModelOptions {
  std::string family = "rate";         // [model] family: "rate" (built in) or a ModelFamily's name
  Nonlinearity nonlinearity = Nonlinearity::sigmoid;
  double p_inhibitory = 0;             // fraction of A0's connections made negative (before scaling)
  std::string connectivity_file;       // CSV n x n used as A instead of a random one (empty: random)
  std::vector<double> connectivity;    // its values, row-major (read and validated with the config)
};

// Which runs write their true and estimated matrices into matrices/ (for heatmaps and reuse).
enum class KeepMatrices { none, first_seed, all };

enum class BackendKind { auto_select, cpu, cuda };

std::string_view to_string(BackendKind kind);

struct RunOptions {
  BackendKind backend = BackendKind::auto_select;
  int threads = 0;           // 0: all cores
  int batch_size = 0;        // networks per batch, 0: chosen automatically; never changes results
  std::vector<int> devices;  // CUDA devices the cuda backend uses (empty: every visible one)
  std::string output_dir;    // empty: causalsweep-out/<name>-<UTC timestamp>
};

// [slurm]: what `causalsweep submit --slurm` asks the scheduler for (its flags override these).
struct SlurmOptions {
  std::string partition, account, time, mem;  // empty: the site's default
  int gpus_per_task = 0, cpus_per_task = 0;   // 0: not requested
  int tasks = 0;                              // array tasks; 0: from the estimated cost
  int throttle = 0;                           // at most this many tasks at once (%N); 0: no limit
};

struct SweepConfig {
  std::string name;          // [top level] name, else the file's stem
  std::string description;
  SweepAxes axes;
  std::vector<EstimatorSpec> estimators;
  ModelOptions model;
  std::vector<uint64_t> roc_seeds;     // [scores] roc_seeds: runs of these seeds keep their ROC points
  KeepMatrices keep_matrices = KeepMatrices::none;  // [scores] keep_matrices: which runs write V and A
  RunOptions run;
  SlurmOptions slurm;
  std::string source_name;   // file path or "<embedded default>"
  std::string source_text;   // the TOML as given, kept in the manifest
};

// Parses and validates a config. Throws InputError naming source:line, key, value and what is allowed
// for unknown keys, wrong types, empty lists and out-of-range values.
SweepConfig parse_config(std::string_view toml_text, std::string_view source_name);

// Reads a config file (InputError if it cannot be read) and parses it.
SweepConfig load_config(const std::filesystem::path& path);

// The embedded default sweep that `causalsweep run` with no config runs.
std::string_view default_config_toml();

// The resolved config (every default filled in), for the manifest.
nlohmann::json to_json(const SweepConfig& config);

}  // namespace causalsweep
