// `causalsweep estimate` (any estimator on recorded activity) and `causalsweep iv` (Tutorial 4's
// one-variable two-stage least squares on a table).
#include <algorithm>
#include <ranges>
#include <cmath>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/gram.hpp"
#include "causalsweep/scores.hpp"
#include "cli.hpp"
#include "data_io.hpp"
#include "output.hpp"

namespace cs = causalsweep;
using Eigen::MatrixXd;

namespace {

struct EstimateOptions {
  std::string x_path, z_path, truth_path, output_dir, nonlinearity = "sigmoid", correction = "none";
  std::vector<std::string> estimators;
  double alpha = 0.05, lasso_alpha = 0.01;
  bool transpose = false, intercept = false;
} estimate_options;

struct IvOptions {
  std::string path, outcome, treatment, instrument;
} iv_options;

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  std::string text = fmt::format("{}", v);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

// Where a neuron's values sit in the file: a row, or a column with --transpose.
std::string neuron_place(bool transpose, Eigen::Index neuron) {
  return fmt::format("{} {}", transpose ? "column" : "row", neuron + 1);
}
std::string cell_place(bool transpose, Eigen::Index neuron, Eigen::Index t) {
  return transpose ? fmt::format("row {}, column {}", t + 1, neuron + 1)
                   : fmt::format("row {}, column {}", neuron + 1, t + 1);
}

cs::EstimatorMethod method_named(const std::string& name) {
  static const std::vector<std::pair<std::string, cs::EstimatorMethod>> methods = {
      {"correlation", cs::EstimatorMethod::correlation}, {"ols", cs::EstimatorMethod::ols},
      {"lasso", cs::EstimatorMethod::lasso},             {"iv", cs::EstimatorMethod::iv},
      {"granger", cs::EstimatorMethod::granger},         {"granger_conditional", cs::EstimatorMethod::granger_conditional}};
  for (const auto& [n, m] : methods)
    if (n == name) return m;
  throw cs::InputError(fmt::format("--estimators: unknown estimator '{}': allowed correlation, ols, lasso, iv, "
                                   "granger, granger_conditional (perturbation needs a simulated perturbation run)",
                                   name));
}

// Parameters a regression of one target has, to tell whether T is long enough.
int parameters(cs::EstimatorMethod method, int k, bool intercept) {
  switch (method) {
    case cs::EstimatorMethod::ols:
    case cs::EstimatorMethod::lasso: return k + (intercept ? 1 : 0);
    case cs::EstimatorMethod::iv:
    case cs::EstimatorMethod::granger_conditional: return k + 1;
    case cs::EstimatorMethod::granger: return 3;
    default: return 2;
  }
}

void run_estimate() {
  const EstimateOptions& o = estimate_options;
  const cs::Nonlinearity f = o.nonlinearity == "identity" ? cs::Nonlinearity::identity : cs::Nonlinearity::sigmoid;
  MatrixXd X = cs::load_matrix(o.x_path);
  if (o.transpose) X.transposeInPlace();
  const auto k = static_cast<int>(X.rows());
  const Eigen::Index T = X.cols();
  const std::string layout = o.transpose ? "time points x neurons (--transpose)" : "neurons x time points";
  MatrixXd Z;
  if (!o.z_path.empty()) {
    Z = cs::load_matrix(o.z_path);
    if (o.transpose) Z.transposeInPlace();
    if (Z.rows() != X.rows() || Z.cols() != X.cols())
      throw cs::InputError(fmt::format("{}: instruments are {} x {} but {} is {} x {} ({}): expected the same shape",
                                       o.z_path, o.transpose ? Z.cols() : Z.rows(), o.transpose ? Z.rows() : Z.cols(),
                                       o.x_path, o.transpose ? T : k, o.transpose ? k : T, layout));
  }
  std::vector<cs::EstimatorSpec> specs;
  for (const std::string& name : o.estimators) {
    cs::EstimatorSpec spec;
    spec.label = name;
    spec.method = method_named(name);
    spec.level = o.alpha;
    spec.alpha = o.lasso_alpha;
    spec.intercept = o.intercept;
    spec.correction = o.correction == "bonferroni" ? cs::Correction::bonferroni
                      : o.correction == "bh"       ? cs::Correction::bh
                                                   : cs::Correction::none;
    if (spec.method == cs::EstimatorMethod::iv && Z.size() == 0)
      throw cs::InputError("--estimators: iv needs instruments: give them with --instruments Z.csv");
    const int needed = parameters(spec.method, k, spec.intercept);
    if (T - 1 <= needed)
      throw cs::InputError(fmt::format("{}: {} time points ({} transitions), but estimator {} fits {} parameters per "
                                       "neuron: expected at least {} time points ({})",
                                       o.x_path, T, T - 1, name, needed, needed + 2, layout));
    specs.push_back(spec);
  }
  if (T < 3) throw cs::InputError(fmt::format("{}: {} time points: expected at least 3 ({})", o.x_path, T, layout));
  for (Eigen::Index i = 0; i < k; ++i)
    if ((X.row(i).array() == X(i, 0)).all())
      throw cs::InputError(fmt::format("{}: {} (neuron {}) is constant ({}) over all {} time points: expected activity "
                                       "that varies ({})",
                                       o.x_path, neuron_place(o.transpose, i), i + 1, number(X(i, 0)), T, layout));
  const bool needs_logit = f == cs::Nonlinearity::sigmoid &&
                           std::any_of(specs.begin(), specs.end(), [](const cs::EstimatorSpec& s) {
                             return s.method == cs::EstimatorMethod::ols || s.method == cs::EstimatorMethod::lasso ||
                                    s.method == cs::EstimatorMethod::iv;
                           });
  if (needs_logit)
    for (Eigen::Index t = 1; t < T; ++t)
      for (Eigen::Index i = 0; i < k; ++i)
        if (!(X(i, t) > 0.0 && X(i, t) < 1.0))
          throw cs::InputError(fmt::format(
              "{}: {}: value {} is outside (0, 1): ols, lasso and iv regress logit(x[t+1]) under the sigmoid model; "
              "expected activity in (0, 1), or --nonlinearity identity to regress x itself",
              o.x_path, cell_place(o.transpose, i, t), number(X(i, t))));
  MatrixXd truth;
  if (!o.truth_path.empty()) {
    truth = cs::load_matrix(o.truth_path);
    if (truth.rows() != k || truth.cols() != k)
      throw cs::InputError(fmt::format("{}: {} rows x {} columns: expected {} x {} (one row and column per neuron of {})",
                                       o.truth_path, truth.rows(), truth.cols(), k, k, o.x_path));
  }

  const cs::Gram gram = cs::gram_from_trajectories(X, Z, false, f);
  std::string csv = "estimator,method,target,source,V,standard_error,statistic,p_value,decision\n";
  std::string scores_csv = "estimator,method,score,value,flags\n";
  std::string roc = "estimator,method,point,fpr,tpr,threshold\n";
  nlohmann::json out = {{"x", o.x_path}, {"instruments", o.z_path}, {"neurons", k}, {"timesteps", T},
                        {"nonlinearity", o.nonlinearity}, {"alpha", o.alpha}, {"correction", o.correction},
                        {"estimators", nlohmann::json::object()}};
  const auto json_matrix = [](const MatrixXd& m) {
    nlohmann::json rows = nlohmann::json::array();
    for (Eigen::Index i = 0; i < m.rows(); ++i) {
      nlohmann::json row = nlohmann::json::array();
      for (Eigen::Index j = 0; j < m.cols(); ++j)
        row.push_back(std::isfinite(m(i, j)) ? nlohmann::json(m(i, j)) : nlohmann::json(nullptr));
      rows.push_back(row);
    }
    return rows;
  };
  const auto at = [](const MatrixXd& m, Eigen::Index i, Eigen::Index j) {
    return m.size() ? m(i, j) : std::numeric_limits<double>::quiet_NaN();
  };
  for (const cs::EstimatorSpec& spec : specs) {
    // User data carry no eta: instruments are taken to matter; a useless Z shows as a tiny first-stage F.
    const cs::Estimate e = cs::run_estimator(spec, gram, nullptr, k, 1.0);
    const MatrixXd decided = cs::declared(e, spec);
    const std::string method(cs::to_string(spec.method));
    for (Eigen::Index i = 0; i < k; ++i)
      for (Eigen::Index j = 0; j < k; ++j)
        csv += fmt::format("{},{},{},{},{},{},{},{},{}\n", spec.label, method, i, j, number(e.V(i, j)),
                           number(at(e.standard_error, i, j)), number(at(e.statistic, i, j)),
                           number(at(e.p_value, i, j)), number(at(decided, i, j)));
    nlohmann::json entry = {{"method", method}, {"V", json_matrix(e.V)}, {"flags", cs::flags_to_string(e.flags)}};
    if (e.standard_error.size()) entry["standard_error"] = json_matrix(e.standard_error);
    if (e.statistic.size()) entry["statistic"] = json_matrix(e.statistic);
    if (e.p_value.size()) entry["p_value"] = json_matrix(e.p_value);
    if (e.f_statistic.size()) entry["f_statistic"] = json_matrix(e.f_statistic);
    if (e.f_p_value.size()) entry["f_p_value"] = json_matrix(e.f_p_value);
    if (decided.size()) entry["decision"] = json_matrix(decided);
    if (spec.method == cs::EstimatorMethod::iv) entry["first_stage_f"] = e.first_stage_f;
    if (e.residual_df > 0) entry["residual_df"] = e.residual_df;
    if (truth.size()) {
      const cs::Scores s = cs::score_run(truth, e, spec, true);
      const uint32_t flags = e.flags | s.flags;
      nlohmann::json scores = {{"corr_with_truth", s.corr_with_truth}, {"auc", s.auc}};
      std::vector<std::pair<std::string, double>> rows = {{"corr_with_truth", s.corr_with_truth}, {"auc", s.auc}};
      if (s.has_decisions) rows.insert(rows.end(), {{"tpr", s.tpr}, {"fpr", s.fpr}});
      if (spec.method == cs::EstimatorMethod::iv) rows.emplace_back("first_stage_f", e.first_stage_f);
      for (const auto& [name, value] : rows) {
        scores_csv += fmt::format("{},{},{},{},{}\n", spec.label, method, name, number(value), cs::flags_to_string(flags));
        entry["scores"][name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
      }
      for (size_t p = 0; p < s.roc.size(); ++p)
        roc += fmt::format("{},{},{},{},{},{}\n", spec.label, method, p, number(s.roc[p].fpr), number(s.roc[p].tpr),
                           number(s.roc[p].threshold));
    }
    out["estimators"][spec.label] = std::move(entry);
  }
  std::vector<std::pair<std::string, std::string>> files = {{"estimates.csv", csv}, {"estimates.json", out.dump(1) + "\n"}};
  if (truth.size()) {
    files.emplace_back("scores.csv", scores_csv);
    files.emplace_back("roc.csv", roc);
  }
  cs::write_run_directory(o.output_dir, files);
  fmt::print("wrote {} ({})\n", o.output_dir,
             fmt::join(std::views::transform(files, [](const auto& file) { return file.first; }), ", "));
}

void run_iv() {
  const IvOptions& o = iv_options;
  const cs::NumericTable table = cs::parse_csv(cs::read_file(o.path), o.path, true);
  const auto column = [&](const std::string& name, const char* flag) {
    const auto it = std::find(table.header.begin(), table.header.end(), name);
    if (it == table.header.end())
      throw cs::InputError(fmt::format("{}: {} '{}' is not a column: expected one of {}", o.path, flag, name,
                                       fmt::join(table.header, ", ")));
    const auto c = static_cast<Eigen::Index>(it - table.header.begin());
    const Eigen::VectorXd values = table.values.col(c);
    if ((values.array() == values(0)).all())
      throw cs::InputError(fmt::format("{}: column {} ('{}', {}) is constant ({}): expected values that vary", o.path,
                                       c + 1, name, flag, number(values(0))));
    return values;
  };
  if (table.values.rows() < 4)
    throw cs::InputError(fmt::format("{}: {} data rows: expected at least 4 for a 2SLS fit with an intercept and its "
                                     "standard error",
                                     o.path, table.values.rows()));
  const Eigen::VectorXd y = column(o.outcome, "--outcome"), t = column(o.treatment, "--treatment"),
                        z = column(o.instrument, "--instrument");
  const cs::ScalarIV r = cs::scalar_two_stage_least_squares(y, t, z);
  fmt::print("two-stage least squares: {} on {} instrumented by {} ({} rows)\n", o.outcome, o.treatment, o.instrument,
             table.values.rows());
  fmt::print("  effect           {:.6g}\n", r.effect);
  fmt::print("  standard error   {:.6g}   (unadjusted, residuals with the observed {})\n", r.standard_error, o.treatment);
  fmt::print("  95% CI           [{:.6g}, {:.6g}]   (Student t, {} df)\n", r.ci_low, r.ci_high, r.residual_df);
  fmt::print("  t, p             {:.6g}, {:.6g}\n", r.t, r.p_value);
  fmt::print("  intercept        {:.6g}\n", r.intercept);
  fmt::print("  first-stage F    {:.6g}   ({} ~ 1 + {}; below ~10: weak instrument)\n", r.first_stage_f, o.treatment,
             o.instrument);
  if (r.flags) fmt::print("  flags            {}\n", cs::flags_to_string(r.flags));
}

}  // namespace

namespace causalsweep::cli {

void add_estimate_commands(CLI::App& app) {
  auto* estimate = app.add_subcommand("estimate", "Run estimators on recorded activity (CSV or .npy)");
  EstimateOptions& o = estimate_options;
  estimate->add_option("X", o.x_path, "activity, neurons x time points (CSV without header, or .npy)")->required();
  estimate->add_option("-z,--instruments", o.z_path, "instruments Z, same shape as X (needed by iv)");
  estimate->add_option("--truth", o.truth_path, "true connectivity A (n x n CSV or .npy): adds scores.csv and roc.csv");
  estimate->add_flag("--transpose", o.transpose, "the files are time points x neurons");
  o.estimators = {"correlation", "ols", "granger"};
  estimate->add_option("-e,--estimators", o.estimators, "comma-separated: correlation, ols, lasso, iv, granger, granger_conditional")
      ->delimiter(',')
      ->capture_default_str();
  estimate->add_option("--alpha", o.alpha, "significance level of the decisions")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  estimate->add_option("--correction", o.correction, "multiple-comparison correction of the decisions")
      ->check(CLI::IsMember({"none", "bonferroni", "bh"}))
      ->capture_default_str();
  estimate->add_option("--lasso-alpha", o.lasso_alpha, "lasso penalty (scikit-learn's alpha)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  estimate->add_flag("--intercept", o.intercept, "ols and lasso fit an intercept");
  estimate->add_option("--nonlinearity", o.nonlinearity,
                       "sigmoid: regress logit(x[t+1]) (activity in (0, 1)); identity: regress x[t+1]")
      ->check(CLI::IsMember({"sigmoid", "identity"}))
      ->capture_default_str();
  estimate->add_option("-o,--output", o.output_dir, "output directory (must not exist)")->required();
  estimate->callback(run_estimate);

  auto* iv = app.add_subcommand("iv", "Two-stage least squares of one outcome on one treatment with one instrument");
  iv->add_option("data", iv_options.path, "CSV with a header row")->required();
  iv->add_option("--outcome", iv_options.outcome, "column of the outcome Y")->required();
  iv->add_option("--treatment", iv_options.treatment, "column of the treatment T")->required();
  iv->add_option("--instrument", iv_options.instrument, "column of the instrument Z")->required();
  iv->callback(run_iv);
}

}  // namespace causalsweep::cli
