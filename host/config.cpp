// Parsing and validation of sweep configs (TOML), the embedded default sweep, and the resolved JSON form.
#include "causalsweep/config.hpp"

#include "data_io.hpp"
#include "causalsweep/model_family.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

namespace causalsweep {
namespace {

constexpr std::array<std::string_view, 8> kMethodNames = {"correlation", "perturbation", "ols", "lasso", "iv",
                                                          "granger", "granger_conditional", "sta_shuffle"};
constexpr std::array<std::string_view, 7> kRateMethodNames = {"correlation", "perturbation", "ols", "lasso", "iv",
                                                              "granger", "granger_conditional"};
constexpr std::array<std::string_view, 3> kCorrectionNames = {"none", "bonferroni", "bh"};
constexpr std::array<std::string_view, 2> kNonlinearityNames = {"sigmoid", "identity"};
constexpr std::array<std::string_view, 3> kBackendNames = {"auto", "cpu", "cuda"};
constexpr double kInf = std::numeric_limits<double>::infinity();

// The allowed values of an integer or float key and how the error messages describe them.
struct IntRule {
  int64_t lo, hi;
  std::string_view text;
};
struct FloatRule {
  double lo, hi;
  bool lo_open, hi_open;
  std::string_view text;
};

constexpr IntRule kNeurons{1, 20000, "an integer in [1, 20000]"};
constexpr IntRule kTimesteps{3, 1'000'000'000, "an integer in [3, 1000000000]"};
constexpr FloatRule kPConnect{0.0, 1.0, false, false, "a number in [0, 1]"};
constexpr FloatRule kEta{0.0, kInf, false, false, "a finite number >= 0"};
constexpr FloatRule kObservedRatio{0.0, 1.0, true, false, "a number in (0, 1]"};
constexpr IntRule kRangeNum{1, 100000, "an integer in [1, 100000]"};
constexpr IntRule kSeedCount{1, 1'000'000, "an integer in [1, 1000000]"};
constexpr IntRule kSeed{0, INT64_MAX, "an integer >= 0"};
constexpr FloatRule kAlpha{0.0, kInf, false, false, "a finite number >= 0"};
constexpr FloatRule kTol{0.0, kInf, true, false, "a finite number > 0"};
constexpr FloatRule kLevel{0.0, 1.0, true, true, "a significance level in (0, 1)"};
constexpr FloatRule kThreshold{0.0, kInf, false, false, "a finite number >= 0 (declared where |V| > threshold)"};
constexpr FloatRule kPInhibitory{0.0, 1.0, false, false, "a number in [0, 1]"};
constexpr IntRule kMaxIter{1, INT_MAX, "an integer in [1, 2147483647]"};
constexpr IntRule kShuffles{1, 65536, "an integer in [1, 65536]"};
constexpr FloatRule kPThreshold{0.0, 1.0, false, false, "a number in [0, 1] (declared where p <= threshold)"};
constexpr IntRule kThreads{0, 4096, "an integer in [0, 4096] (0: all cores)"};
constexpr IntRule kBatchSize{0, INT_MAX, "an integer in [0, 2147483647] (0: automatic)"};
constexpr std::string_view kAxisForms = ", an array of such, or a range table { start, stop, num, scale }";

// Option keys an [estimators.<label>] table may hold, by method.
std::vector<std::string_view> allowed_options(EstimatorMethod method) {
  switch (method) {
    case EstimatorMethod::ols:
      return {"method", "intercept", "alpha", "correction"};
    case EstimatorMethod::lasso:
      return {"method", "intercept", "alpha", "tol", "max_iter", "solver", "threshold"};
    case EstimatorMethod::iv:
    case EstimatorMethod::granger:
    case EstimatorMethod::granger_conditional:
      return {"method", "alpha", "correction"};
    case EstimatorMethod::correlation:
    case EstimatorMethod::perturbation:
      return {"method", "threshold"};
    case EstimatorMethod::sta_shuffle:
      return {"method", "shuffles", "threshold"};
    default:
      return {"method"};
  }
}

std::optional<EstimatorMethod> find_method(std::string_view name) {
  const auto it = std::find(kMethodNames.begin(), kMethodNames.end(), name);
  if (it == kMethodNames.end()) return std::nullopt;
  return static_cast<EstimatorMethod>(it - kMethodNames.begin());
}

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

std::string join_key(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string index_key(std::string_view key, size_t i) { return fmt::format("{}[{}]", key, i); }

// Reads one TOML document into a SweepConfig. Every error names source:line, the dotted key, the value
// as written in the source (sliced from the text, so 0.1 is not shown as 0.10000000000000001) and what
// is allowed.
class Reader {
 public:
  Reader(std::string_view text, std::string_view source) : text_(text), source_(source) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text_.size(); ++i)
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
  }

  [[noreturn]] void fail(const toml::node& node, std::string_view key, std::string_view allowed) const {
    throw InputError(fmt::format("{}:{}: key '{}' has value {}: {}", source_, node.source().begin.line, key,
                                 as_written(node), allowed));
  }

  [[noreturn]] void fail_missing(const toml::node& table, std::string_view key, std::string_view allowed) const {
    throw InputError(
        fmt::format("{}:{}: key '{}' is missing: required, {}", source_, table.source().begin.line, key, allowed));
  }

  SweepConfig read(const toml::table& root) const {
    check_keys(root, "", {"name", "description", "model", "seeds", "estimators", "scores", "run", "slurm"});
    SweepConfig config;
    config.name = std::filesystem::path(source_).stem().string();
    if (const auto* node = root.get("name")) {
      constexpr std::string_view allowed = "a non-empty string without '/' or '\\' (it names the output folder)";
      config.name = read_string(*node, "name", allowed);
      if (config.name.empty() || config.name.find_first_of("/\\") != std::string::npos)
        fail(*node, "name", fmt::format("must be {}", allowed));
    }
    if (const auto* node = root.get("description")) config.description = read_string(*node, "description", "a string");
    const ModelFamily* family = nullptr;
    config.axes = read_model(root, config.model, family);
    config.axes.seeds = read_seeds(root);
    config.estimators = read_estimators(root, config.axes.perturb, family);
    config.run = read_run(root);
    config.slurm = read_slurm(root);
    if (const auto* scores = get_table(root, "scores")) {
      check_keys(*scores, "scores", {"roc_seeds", "keep_matrices"});
      if (const auto* node = scores->get("keep_matrices")) {
        constexpr std::string_view kept = R"(one of "none", "first_seed" (the first seed of every grid point), "all")";
        const auto name = read_string(*node, "scores.keep_matrices", kept);
        if (name == "none") config.keep_matrices = KeepMatrices::none;
        else if (name == "first_seed") config.keep_matrices = KeepMatrices::first_seed;
        else if (name == "all") config.keep_matrices = KeepMatrices::all;
        else fail(*node, "scores.keep_matrices", fmt::format("must be {}", kept));
        if (family && config.keep_matrices != KeepMatrices::none)
          fail(*node, "scores.keep_matrices",
               fmt::format("must be \"none\" for model family {}: its runs have no connectivity matrix estimate",
                           family->name()));
      }
      if (const auto* list = scores->get("roc_seeds")) {
        if (!list->is_array())
          fail(*list, "scores.roc_seeds", fmt::format("must be an array of seeds (got {})", type_name(*list)));
        const auto& array = *list->as_array();
        for (size_t i = 0; i < array.size(); ++i)
          config.roc_seeds.push_back(static_cast<uint64_t>(read_scalar(array[i], index_key("scores.roc_seeds", i), kSeed)));
      }
    }
    return config;
  }

 private:
  // Byte offset of a toml++ source position; its columns count code points, not bytes.
  std::optional<size_t> offset(const toml::source_position& pos) const {
    if (pos.line == 0 || pos.line > line_starts_.size() || pos.column == 0) return std::nullopt;
    size_t at = line_starts_[pos.line - 1];
    for (uint32_t col = 1; col < pos.column && at < text_.size(); ++col) {
      ++at;  // then skip the code point's UTF-8 continuation bytes (10xxxxxx)
      while (at < text_.size() && (static_cast<unsigned char>(text_[at]) & 0xC0) == 0x80) ++at;
    }
    return at;
  }

  // The value's text in the source, on one line and shortened; block tables are just "a table".
  std::string as_written(const toml::node& node) const {
    if (node.is_table() && !node.as_table()->is_inline()) return "a table";
    const auto begin = offset(node.source().begin), end = offset(node.source().end);
    std::string raw;
    if (begin && end && *begin < *end) {
      raw = std::string(text_.substr(*begin, *end - *begin));
    } else {
      std::ostringstream out;
      node.visit([&](const auto& value) { out << value; });
      raw = out.str();
    }
    std::string text;
    for (const char c : raw) {
      const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
      if (!space)
        text += c;
      else if (!text.empty() && text.back() != ' ')
        text += ' ';
    }
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    return text;
  }

  void check_keys(const toml::table& table, std::string_view path,
                  std::initializer_list<std::string_view> allowed) const {
    for (auto&& [key, node] : table) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      if (path.empty())
        fail(node, key.str(), fmt::format("unknown key; allowed top-level keys: {}", fmt::join(allowed, ", ")));
      fail(node, join_key(path, key.str()),
           fmt::format("unknown key; allowed keys in {}: {}", path, fmt::join(allowed, ", ")));
    }
  }

  const toml::table* get_table(const toml::table& parent, std::string_view key) const {
    const auto* node = parent.get(key);
    if (node && !node->is_table())
      fail(*node, key, fmt::format("must be a table [{}] (got {})", key, type_name(*node)));
    return node ? node->as_table() : nullptr;
  }

  std::string read_string(const toml::node& node, std::string_view key, std::string_view allowed) const {
    if (!node.is_string()) fail(node, key, fmt::format("must be {} (got {})", allowed, type_name(node)));
    return node.as_string()->get();
  }

  bool read_bool(const toml::node& node, std::string_view key) const {
    if (!node.is_boolean()) fail(node, key, fmt::format("must be true or false (got {})", type_name(node)));
    return node.as_boolean()->get();
  }

  // Floats are not accepted for integer keys, not even 40.0: a float there is most likely a mistake.
  int64_t read_scalar(const toml::node& node, std::string_view key, const IntRule& rule,
                      std::string_view forms = {}) const {
    if (!node.is_integer()) fail(node, key, fmt::format("must be {}{} (got {})", rule.text, forms, type_name(node)));
    const int64_t value = node.as_integer()->get();
    if (value < rule.lo || value > rule.hi) fail(node, key, fmt::format("must be {}", rule.text));
    return value;
  }

  double read_scalar(const toml::node& node, std::string_view key, const FloatRule& rule,
                     std::string_view forms = {}) const {
    if (!node.is_number()) fail(node, key, fmt::format("must be {}{} (got {})", rule.text, forms, type_name(node)));
    const double value =
        node.is_integer() ? static_cast<double>(node.as_integer()->get()) : node.as_floating_point()->get();
    const bool ok = std::isfinite(value) && (rule.lo_open ? value > rule.lo : value >= rule.lo) &&
                    (rule.hi_open ? value < rule.hi : value <= rule.hi);
    if (!ok) fail(node, key, fmt::format("must be {}", rule.text));
    return value;
  }

  // An axis: a scalar, a non-empty array of distinct values, or a range table.
  template <class Rule>
  auto read_axis(const toml::node& node, const std::string& key, const Rule& rule) const {
    using T = decltype(read_scalar(node, key, rule));
    std::vector<T> values;
    if (const auto* array = node.as_array()) {
      if (array->empty()) fail(node, key, fmt::format("must not be empty: give {}{}", rule.text, kAxisForms));
      for (size_t i = 0; i < array->size(); ++i) {
        const T value = read_scalar((*array)[i], index_key(key, i), rule);
        const auto earlier = std::find(values.begin(), values.end(), value);
        if (earlier != values.end())
          fail((*array)[i], index_key(key, i),
               fmt::format("must be unique (same as {})", index_key(key, size_t(earlier - values.begin()))));
        values.push_back(value);
      }
    } else if (const auto* table = node.as_table()) {
      values = read_range<T>(*table, key, rule);
    } else {
      values.push_back(read_scalar(node, key, rule, kAxisForms));
    }
    return values;
  }

  // { start, stop, num[, scale] }: num points including both ends, evenly or geometrically spaced.
  template <class T, class Rule>
  std::vector<T> read_range(const toml::table& table, const std::string& key, const Rule& rule) const {
    check_keys(table, key, {"start", "stop", "num", "scale"});
    const auto required = [&](std::string_view name, std::string_view what) -> const toml::node& {
      const auto* node = table.get(name);
      if (!node) fail_missing(table, join_key(key, name), what);
      return *node;
    };
    const auto& start_node = required("start", rule.text);
    const auto& stop_node = required("stop", rule.text);
    const auto& num_node = required("num", kRangeNum.text);
    const double start = static_cast<double>(read_scalar(start_node, key + ".start", rule));
    const double stop = static_cast<double>(read_scalar(stop_node, key + ".stop", rule));
    const int64_t num = read_scalar(num_node, key + ".num", kRangeNum);
    bool log = false;
    if (const auto* scale = table.get("scale")) {
      const auto name = read_string(*scale, key + ".scale", "\"linear\" or \"log\"");
      if (name != "linear" && name != "log") fail(*scale, key + ".scale", "must be \"linear\" or \"log\"");
      log = name == "log";
    }
    if (log && start <= 0) fail(start_node, key + ".start", "must be > 0 with scale = \"log\"");
    if (log && stop <= 0) fail(stop_node, key + ".stop", "must be > 0 with scale = \"log\"");
    if (num == 1 && start != stop)
      fail(num_node, key + ".num", "must be >= 2 when start != stop (the range includes both ends)");

    std::vector<T> points;
    for (int64_t i = 0; i < num; ++i) {
      const double t = num == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(num - 1);
      double x = log ? std::exp(std::log(start) + t * (std::log(stop) - std::log(start))) : start + t * (stop - start);
      if (i == 0) x = start;
      if (i == num - 1) x = stop;
      if constexpr (std::is_integral_v<T>) {
        points.push_back(static_cast<T>(std::llround(x)));
      } else {
        // 12 significant digits: 0.2..1.0 gives 0.6, not 0.6000000000000001, so floor(n * ratio) and the
        // curve keys come out as the user expects.
        points.push_back(std::stod(fmt::format("{:.12g}", x)));
      }
    }
    // The points are monotone, so any repeat is next to its twin.
    for (size_t i = 1; i < points.size(); ++i)
      if (points[i] == points[i - 1])
        fail(table, key,
             fmt::format("must give distinct points, but points {} and {} are both {}{}", i - 1, i, points[i],
                         std::is_integral_v<T> ? " after rounding to integers; use a smaller num" : ""));
    return points;
  }

  static std::vector<int> to_int(const std::vector<int64_t>& values) {
    return {values.begin(), values.end()};  // the rules bound every value well inside int
  }

  SweepAxes read_model(const toml::table& root, ModelOptions& options, const ModelFamily*& family) const {
    const auto* model = get_table(root, "model");
    if (!model) fail_missing(root, "model", "a [model] table with n_neurons and timesteps");
    if (const auto* node = model->get("family")) {
      const auto names = model_family_names();
      const auto allowed = fmt::format("one of \"{}\"", fmt::join(names, "\", \""));
      options.family = read_string(*node, "model.family", allowed);
      if (std::find(names.begin(), names.end(), options.family) == names.end())
        fail(*node, "model.family", fmt::format("unknown model family; must be {}", allowed));
      family = find_model_family(options.family);
      if (family) return read_family_model(*model, *family);
    }
    check_keys(*model, "model",
               {"n_neurons", "timesteps", "p_connect", "eta", "observed_ratio", "perturb", "nonlinearity",
                "p_inhibitory", "connectivity_file", "family"});
    if (const auto* node = model->get("nonlinearity")) {
      const auto allowed = fmt::format("one of \"{}\"", fmt::join(kNonlinearityNames, "\", \""));
      const auto name = read_string(*node, "model.nonlinearity", allowed);
      const auto it = std::find(kNonlinearityNames.begin(), kNonlinearityNames.end(), name);
      if (it == kNonlinearityNames.end()) fail(*node, "model.nonlinearity", fmt::format("must be {}", allowed));
      options.nonlinearity = static_cast<Nonlinearity>(it - kNonlinearityNames.begin());
    }
    if (const auto* node = model->get("p_inhibitory"))
      options.p_inhibitory = read_scalar(*node, "model.p_inhibitory", kPInhibitory);
    int file_neurons = 0;
    if (const auto* node = model->get("connectivity_file")) {
      options.connectivity_file = read_string(*node, "model.connectivity_file", "a path to a CSV file (string)");
      if (options.p_inhibitory > 0)
        fail(*node, "model.connectivity_file", "cannot be combined with model.p_inhibitory: the file gives the signs");
      // Relative paths are relative to the config file's folder.
      std::filesystem::path path(options.connectivity_file);
      if (path.is_relative()) path = std::filesystem::path(source_).parent_path() / path;
      Eigen::MatrixXd A;
      try {
        A = load_matrix(path);
      } catch (const InputError& e) {
        fail(*node, "model.connectivity_file", e.what());
      }
      if (A.rows() != A.cols())
        fail(*node, "model.connectivity_file",
             fmt::format("'{}' holds {} rows x {} columns: expected a square n x n matrix (row = target, "
                         "column = source)",
                         path.string(), A.rows(), A.cols()));
      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = A;
      options.connectivity.assign(row_major.data(), row_major.data() + row_major.size());
      file_neurons = static_cast<int>(A.rows());
    }
    const auto required = [&](std::string_view name, std::string_view rule_text) -> const toml::node& {
      const auto* node = model->get(name);
      if (!node) fail_missing(*model, join_key("model", name), fmt::format("{}{}", rule_text, kAxisForms));
      return *node;
    };
    const auto optional_axis = [&](std::string_view name, const FloatRule& rule, double fallback) {
      const auto* node = model->get(name);
      return node ? read_axis(*node, join_key("model", name), rule) : std::vector<double>{fallback};
    };
    SweepAxes axes;
    if (file_neurons > 0 && !model->get("n_neurons")) {
      axes.n_neurons = {file_neurons};
    } else {
      axes.n_neurons = to_int(read_axis(required("n_neurons", kNeurons.text), "model.n_neurons", kNeurons));
      if (file_neurons > 0 && (axes.n_neurons.size() != 1 || axes.n_neurons[0] != file_neurons))
        fail(*model->get("n_neurons"), "model.n_neurons",
             fmt::format("must be {} (the size of model.connectivity_file) or left out", file_neurons));
    }
    axes.timesteps = to_int(read_axis(required("timesteps", kTimesteps.text), "model.timesteps", kTimesteps));
    axes.p_connect = optional_axis("p_connect", kPConnect, 0.1);
    axes.eta = optional_axis("eta", kEta, 0.0);
    axes.observed_ratio = optional_axis("observed_ratio", kObservedRatio, 1.0);
    if (const auto* node = model->get("perturb")) axes.perturb = read_bool(*node, "model.perturb");
    return axes;
  }

  // [model] of another family: every parameter is an axis (scalar, array or range), absent ones take
  // their default; each combination must be one the family can run.
  SweepAxes read_family_model(const toml::table& model, const ModelFamily& family) const {
    const auto& parameters = family.parameters();
    for (auto&& [key, node] : model) {
      if (key.str() == "family") continue;
      const bool known = std::any_of(parameters.begin(), parameters.end(),
                                     [&](const ModelParameter& p) { return p.key == key.str(); });
      if (known) continue;
      std::vector<std::string_view> keys{"family"};
      for (const auto& p : parameters) keys.push_back(p.key);
      fail(node, join_key("model", key.str()),
           fmt::format("unknown key for model family {}; allowed keys in model: {}", family.name(), fmt::join(keys, ", ")));
    }
    SweepAxes axes;
    for (const ModelParameter& p : parameters) {
      const auto* node = model.get(p.key);
      const std::string key = join_key("model", p.key);
      if (!node) {
        axes.parameters.push_back({p.fallback});
        continue;
      }
      if (!p.excludes.empty())
        if (const auto* other = model.get(p.excludes))
          fail(*other, join_key("model", p.excludes),
               fmt::format("cannot be combined with model.{} (line {}): give one of them", p.key,
                           node->source().begin.line));
      if (p.integer) {
        const IntRule rule{static_cast<int64_t>(p.lo), static_cast<int64_t>(p.hi), p.allowed};
        const auto values = read_axis(*node, key, rule);
        axes.parameters.emplace_back(values.begin(), values.end());
      } else {
        const FloatRule rule{p.lo, p.hi, p.lo_open, p.hi_open, p.allowed};
        axes.parameters.push_back(read_axis(*node, key, rule));
      }
    }
    for (const auto& point : parameter_points(axes.parameters)) {
      const std::string reason = family.invalid_reason(point);
      if (reason.empty()) continue;
      std::vector<std::string> values;
      for (size_t i = 0; i < point.size(); ++i)
        if (axes.parameters[i].size() > 1) values.push_back(fmt::format("{} = {}", parameters[i].key, point[i]));
      throw InputError(fmt::format("{}:{}: [model] (family {}){}: {}", source_, model.source().begin.line,
                                   family.name(),
                                   values.empty() ? std::string() : fmt::format(" at {}", fmt::join(values, ", ")),
                                   reason));
    }
    return axes;
  }

  std::vector<uint64_t> read_seeds(const toml::table& root) const {
    const auto* seeds = get_table(root, "seeds");
    int64_t count = 10, start = 0;
    if (seeds) {
      check_keys(*seeds, "seeds", {"count", "start", "list"});
      if (const auto* list = seeds->get("list")) {
        for (const std::string_view other : {"count", "start"})
          if (const auto* node = seeds->get(other))
            fail(*node, join_key("seeds", other),
                 "cannot be combined with seeds.list: give either list or count/start");
        if (!list->is_array() || list->as_array()->empty())
          fail(*list, "seeds.list",
               fmt::format("must be a non-empty array of unique integers >= 0 (got {})",
                           list->is_array() ? "an empty array" : type_name(*list)));
        std::vector<uint64_t> values;
        const auto& array = *list->as_array();
        for (size_t i = 0; i < array.size(); ++i) {
          const auto value = static_cast<uint64_t>(read_scalar(array[i], index_key("seeds.list", i), kSeed));
          const auto earlier = std::find(values.begin(), values.end(), value);
          if (earlier != values.end())
            fail(array[i], index_key("seeds.list", i),
                 fmt::format("must be unique (same as {})", index_key("seeds.list", size_t(earlier - values.begin()))));
          values.push_back(value);
        }
        return values;
      }
      if (const auto* node = seeds->get("count")) count = read_scalar(*node, "seeds.count", kSeedCount);
      if (const auto* node = seeds->get("start")) start = read_scalar(*node, "seeds.start", kSeed);
    }
    // start <= INT64_MAX and count <= 1e6, so start + count - 1 fits in uint64_t.
    std::vector<uint64_t> values(static_cast<size_t>(count));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint64_t>(start) + i;
    return values;
  }

  std::vector<EstimatorSpec> read_estimators(const toml::table& root, bool perturb, const ModelFamily* family) const {
    const std::vector<std::string_view> family_methods =
        family ? family->methods() : std::vector<std::string_view>(kRateMethodNames.begin(), kRateMethodNames.end());
    const std::string methods = fmt::format("{}", fmt::join(family_methods, ", "));
    const std::string use_text = fmt::format(
        "a non-empty array of unique estimator labels, e.g. use = [\"correlation\", \"lasso\"]; "
        "methods: {}",
        methods);
    const auto* table = get_table(root, "estimators");
    const auto* use = table ? table->get("use") : nullptr;
    toml::array default_use;  // another family's own test runs without being named in estimators.use
    if (!use && family) {
      default_use.push_back(std::string(family_methods.front()));
      use = &default_use;
    }
    if (!use) fail_missing(table ? static_cast<const toml::node&>(*table) : root, "estimators.use", use_text);
    const toml::table no_options;
    if (!table) table = &no_options;
    if (!use->is_array() || use->as_array()->empty())
      fail(*use, "estimators.use",
           fmt::format("must be {} (got {})", use_text, use->is_array() ? "an empty array" : type_name(*use)));
    const auto& array = *use->as_array();

    // Labels name outputs (columns, files), so keep them to a safe alphabet.
    std::vector<std::string> labels;
    for (size_t i = 0; i < array.size(); ++i) {
      const auto key = index_key("estimators.use", i);
      auto label = read_string(array[i], key, "a label (string)");
      const bool safe = !label.empty() && std::all_of(label.begin(), label.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      });
      if (!safe) fail(array[i], key, "must be a non-empty label of letters, digits, '_' and '-'");
      const auto earlier = std::find(labels.begin(), labels.end(), label);
      if (earlier != labels.end())
        fail(array[i], key,
             fmt::format("must be unique (same as {})", index_key("estimators.use", size_t(earlier - labels.begin()))));
      labels.push_back(std::move(label));
    }

    for (auto&& [key, node] : *table) {
      if (key.str() == "use") continue;
      const auto path = join_key("estimators", key.str());
      if (std::find(labels.begin(), labels.end(), key.str()) == labels.end())
        fail(node, path,
             fmt::format("unknown key; allowed keys in estimators: use and an options table per label in "
                         "estimators.use ({})",
                         fmt::join(labels, ", ")));
      if (!node.is_table())
        fail(node, path, fmt::format("must be a table of options [{}] (got {})", path, type_name(node)));
    }

    std::vector<EstimatorSpec> specs;
    for (size_t i = 0; i < labels.size(); ++i) {
      EstimatorSpec spec;
      spec.label = labels[i];
      const auto path = join_key("estimators", spec.label);
      const auto* options = table->get_as<toml::table>(spec.label);
      const auto* method_node = options ? options->get("method") : nullptr;
      if (method_node) {
        const auto name = read_string(*method_node, path + ".method", fmt::format("one of {}", methods));
        const auto method = find_method(name);
        if (!method)
          fail(*method_node, path + ".method", fmt::format("unknown estimator method; allowed: {}", methods));
        spec.method = *method;
      } else {
        const auto method = find_method(spec.label);
        if (!method)
          fail(array[i], index_key("estimators.use", i),
               fmt::format("unknown estimator method; allowed: {} (or give [{}] a method key to use this label "
                           "for one of them)",
                           methods, path));
        spec.method = *method;
      }
      if (std::find(family_methods.begin(), family_methods.end(), to_string(spec.method)) == family_methods.end())
        fail(method_node ? *method_node : array[i], method_node ? path + ".method" : index_key("estimators.use", i),
             fmt::format("method {} does not apply to model family {}; allowed: {}", to_string(spec.method),
                         family ? family->name() : "rate", methods));
      if (spec.method == EstimatorMethod::sta_shuffle) spec.threshold = 0.05;
      if (spec.method == EstimatorMethod::perturbation && !perturb)
        fail(method_node ? *method_node : array[i], method_node ? path + ".method" : index_key("estimators.use", i),
             "method perturbation needs Tutorial 1's perturbation mode: set model.perturb = true");
      if (!options) {
        specs.push_back(spec);
        continue;
      }
      const auto allowed = allowed_options(spec.method);
      for (auto&& [key, node] : *options)
        if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end())
          fail(node, join_key(path, key.str()),
               fmt::format("unknown key; allowed keys in {} (method {}): {}", path, to_string(spec.method),
                           fmt::join(allowed, ", ")));
      if (const auto* node = options->get("intercept")) spec.intercept = read_bool(*node, path + ".intercept");
      if (const auto* node = options->get("alpha")) {
        // lasso's alpha is its penalty; for the tests (ols, iv, granger*) it is the significance level.
        if (spec.method == EstimatorMethod::lasso)
          spec.alpha = read_scalar(*node, path + ".alpha", kAlpha);
        else
          spec.level = read_scalar(*node, path + ".alpha", kLevel);
      }
      if (const auto* node = options->get("correction")) {
        const auto corrections = fmt::format("one of \"{}\"", fmt::join(kCorrectionNames, "\", \""));
        const auto name = read_string(*node, path + ".correction", corrections);
        const auto it = std::find(kCorrectionNames.begin(), kCorrectionNames.end(), name);
        if (it == kCorrectionNames.end()) fail(*node, path + ".correction", fmt::format("must be {}", corrections));
        spec.correction = static_cast<Correction>(it - kCorrectionNames.begin());
      }
      if (const auto* node = options->get("threshold"))
        spec.threshold = read_scalar(*node, path + ".threshold",
                                     spec.method == EstimatorMethod::sta_shuffle ? kPThreshold : kThreshold);
      if (const auto* node = options->get("shuffles"))
        spec.shuffles = static_cast<int>(read_scalar(*node, path + ".shuffles", kShuffles));
      if (const auto* node = options->get("tol")) spec.tol = read_scalar(*node, path + ".tol", kTol);
      if (const auto* node = options->get("max_iter"))
        spec.max_iter = static_cast<int>(read_scalar(*node, path + ".max_iter", kMaxIter));
      if (const auto* node = options->get("solver")) {
        constexpr std::string_view solvers = R"(one of "active_set" (default), "cyclic" (scikit-learn's iterates))";
        const auto name = read_string(*node, path + ".solver", solvers);
        if (name == "active_set") spec.solver = LassoSolver::active_set;
        else if (name == "cyclic") spec.solver = LassoSolver::cyclic;
        else fail(*node, path + ".solver", fmt::format("must be {}", solvers));
      }
      specs.push_back(spec);
    }
    return specs;
  }

  SlurmOptions read_slurm(const toml::table& root) const {
    SlurmOptions slurm;
    const auto* table = get_table(root, "slurm");
    if (!table) return slurm;
    check_keys(*table, "slurm", {"partition", "account", "time", "mem", "gpus_per_task", "cpus_per_task", "tasks", "throttle"});
    const auto text = [&](const char* key, std::string& into, std::string_view allowed) {
      if (const auto* node = table->get(key)) {
        into = read_string(*node, fmt::format("slurm.{}", key), allowed);
        // Passed to sbatch as one #SBATCH line: keep it one plain token.
        if (into.empty() || into.find_first_of(" \t\n\r'\"\\$`;") != std::string::npos)
          fail(*node, fmt::format("slurm.{}", key), allowed);
      }
    };
    text("partition", slurm.partition, "a partition name (non-empty, no spaces or quotes)");
    text("account", slurm.account, "an account name (non-empty, no spaces or quotes)");
    text("time", slurm.time, "a SLURM time limit such as \"2:00:00\" or \"1-12:00:00\"");
    text("mem", slurm.mem, "a SLURM memory size such as \"8G\"");
    constexpr IntRule kCount{0, 1 << 20, "an integer in [0, 1048576] (0: not set)"};
    if (const auto* node = table->get("gpus_per_task"))
      slurm.gpus_per_task = static_cast<int>(read_scalar(*node, "slurm.gpus_per_task", kCount));
    if (const auto* node = table->get("cpus_per_task"))
      slurm.cpus_per_task = static_cast<int>(read_scalar(*node, "slurm.cpus_per_task", kCount));
    if (const auto* node = table->get("tasks"))
      slurm.tasks = static_cast<int>(read_scalar(*node, "slurm.tasks", kCount));
    if (const auto* node = table->get("throttle"))
      slurm.throttle = static_cast<int>(read_scalar(*node, "slurm.throttle", kCount));
    return slurm;
  }

  RunOptions read_run(const toml::table& root) const {
    RunOptions run;
    const auto* table = get_table(root, "run");
    if (!table) return run;
    check_keys(*table, "run", {"backend", "threads", "batch_size", "output", "devices"});
    if (const auto* node = table->get("backend")) {
      const auto allowed = fmt::format("one of \"{}\"", fmt::join(kBackendNames, "\", \""));
      const auto name = read_string(*node, "run.backend", allowed);
      const auto it = std::find(kBackendNames.begin(), kBackendNames.end(), name);
      if (it == kBackendNames.end()) fail(*node, "run.backend", fmt::format("must be {}", allowed));
      run.backend = static_cast<BackendKind>(it - kBackendNames.begin());
    }
    if (const auto* node = table->get("threads"))
      run.threads = static_cast<int>(read_scalar(*node, "run.threads", kThreads));
    if (const auto* node = table->get("batch_size"))
      run.batch_size = static_cast<int>(read_scalar(*node, "run.batch_size", kBatchSize));
    if (const auto* node = table->get("devices")) {
      constexpr IntRule kDevice{0, 1023, "a CUDA device id in [0, 1023]"};
      if (!node->is_array() || node->as_array()->empty())
        fail(*node, "run.devices",
             fmt::format("must be a non-empty array of unique CUDA device ids, e.g. [0, 1] (got {})",
                         node->is_array() ? "an empty array" : type_name(*node)));
      const auto& array = *node->as_array();
      for (size_t i = 0; i < array.size(); ++i) {
        const int id = static_cast<int>(read_scalar(array[i], index_key("run.devices", i), kDevice));
        if (std::find(run.devices.begin(), run.devices.end(), id) != run.devices.end())
          fail(array[i], index_key("run.devices", i), "must be unique");
        run.devices.push_back(id);
      }
    }
    if (const auto* node = table->get("output")) {
      run.output_dir = read_string(*node, "run.output", "a non-empty path (string)");
      if (run.output_dir.empty()) fail(*node, "run.output", "must be a non-empty path (leave it out for the default)");
    }
    return run;
  }

  std::string_view text_;
  std::string source_;
  std::vector<size_t> line_starts_;
};

}  // namespace

std::string_view to_string(EstimatorMethod method) { return kMethodNames.at(static_cast<size_t>(method)); }

std::string_view to_string(LassoSolver solver) {
  return solver == LassoSolver::cyclic ? "cyclic" : "active_set";
}

std::string_view to_string(BackendKind kind) { return kBackendNames.at(static_cast<size_t>(kind)); }

std::string_view to_string(Correction correction) { return kCorrectionNames.at(static_cast<size_t>(correction)); }

std::string_view to_string(Nonlinearity nonlinearity) {
  return kNonlinearityNames.at(static_cast<size_t>(nonlinearity));
}

// toml++ 3.3's is_non_ascii_horizontal_whitespace reaches __builtin_unreachable (undefined
// behaviour) for U+00A1..U+0499, U+2C5E..U+3057 and U+FB26..U+FEFE (the blocks of its lookup that
// its switch misses), and it is called on characters in keys, bare
// values, strings and after escapes alike (found by fuzzing: tests/fuzz/regressions/). Such
// characters are refused before toml++ sees them; in "..." strings \uXXXX escapes spell them.
static void reject_unsafe_code_points(std::string_view text, std::string_view source) {
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = [&](size_t at) { return at < text.size() ? static_cast<unsigned char>(text[at]) : 0u; };
    const unsigned b0 = byte(i), b1 = byte(i + 1), b2 = byte(i + 2);
    line += b0 == '\n';
    unsigned code = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF && (b1 & 0xC0) == 0x80) code = ((b0 & 0x1Fu) << 6) | (b1 & 0x3Fu);
    if (b0 >= 0xE0 && b0 <= 0xEF && (b1 & 0xC0) == 0x80 && (b2 & 0xC0) == 0x80)
      code = ((b0 & 0x0Fu) << 12) | ((b1 & 0x3Fu) << 6) | (b2 & 0x3Fu);
    if ((code >= 0xA1 && code <= 0x499) || (code >= 0x2C5E && code <= 0x3057) || (code >= 0xFB26 && code <= 0xFEFE))
      throw InputError(fmt::format("{}:{}: character U+{:04X} is not supported in configs (toml++ 3.3 mishandles "
                                   "U+00A1..U+0499, U+2C5E..U+3057 and U+FB26..U+FEFE); inside a \"...\" string "
                                   "write it as \\u{:04X}",
                                   source, line, code, code));
  }
}

SweepConfig parse_config(std::string_view toml_text, std::string_view source_name) {
  reject_unsafe_code_points(toml_text, source_name);
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& error) {
    throw InputError(
        fmt::format("{}:{}: TOML syntax error: {}", source_name, error.source().begin.line, error.description()));
  }
  SweepConfig config = Reader(toml_text, source_name).read(root);
  config.source_name = std::string(source_name);
  config.source_text = std::string(toml_text);
  return config;
}

SweepConfig load_config(const std::filesystem::path& path) {
  const auto cannot_read = [&](std::string_view reason) {
    return InputError(fmt::format("cannot read config '{}': {}", path.string(), reason));
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw cannot_read("it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw cannot_read(std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw cannot_read(std::strerror(errno));
  // parse_config defaults the name to the stem of the source name, i.e. the file's stem.
  return parse_config(text.str(), path.string());
}

std::string_view default_config_toml() {
  // configs/default.toml holds the same text (a test checks that they are byte-identical).
  return R"toml(# The embedded default sweep: what `causalsweep run` runs when no config is given.
# Tutorial 4: instrumental variables (IV) against regression and correlation as fewer neurons are
# observed. With strong instruments (eta = 2) and long recordings IV stays nearly flat across observed
# ratios, while lasso and OLS without an intercept degrade as the unobserved neurons confound them.
name = "default"
description = "Tutorial 4: IV vs lasso, OLS and correlation across observed ratios (n = 40, T = 20000, eta = 2)"

[model]
n_neurons = 40                               # network size
timesteps = 20000                            # simulated steps per network
p_connect = 0.1                              # connection probability of A0
eta = 2.0                                    # instrument strength: weight of z in every neuron's drive
observed_ratio = [1.0, 0.8, 0.6, 0.4, 0.2]   # fraction of neurons observed (always the first k)

[seeds]
count = 50                                   # seeds 0 .. 49: one network per seed and setting
start = 0

[estimators]
use = ["correlation", "lasso", "ols", "iv"]  # lasso, ols: no intercept, as in the tutorials

[run]
backend = "auto"                             # CUDA when a GPU is usable, else the CPU
)toml";
}

nlohmann::json to_json(const SweepConfig& config) {
  nlohmann::json estimators = nlohmann::json::array();
  for (const auto& spec : config.estimators) {
    nlohmann::json e = {{"label", spec.label}, {"method", to_string(spec.method)}};
    // Only the options the method has, so the manifest does not suggest that correlation uses alpha.
    if (spec.method == EstimatorMethod::ols || spec.method == EstimatorMethod::lasso) e["intercept"] = spec.intercept;
    if (spec.method == EstimatorMethod::lasso) {
      e["alpha"] = spec.alpha;
      e["tol"] = spec.tol;
      e["max_iter"] = spec.max_iter;
      e["solver"] = to_string(spec.solver);
    }
    const bool tests = spec.method == EstimatorMethod::ols || spec.method == EstimatorMethod::iv ||
                       spec.method == EstimatorMethod::granger || spec.method == EstimatorMethod::granger_conditional;
    if (tests) {
      e["alpha"] = spec.level;
      e["correction"] = to_string(spec.correction);
    } else if (spec.threshold >= 0) {
      e["threshold"] = spec.threshold;
    }
    if (spec.method == EstimatorMethod::sta_shuffle) e["shuffles"] = spec.shuffles;
    estimators.push_back(std::move(e));
  }
  const auto& axes = config.axes;
  nlohmann::json model = {{"family", config.model.family}};
  if (const ModelFamily* family = find_model_family(config.model.family)) {
    for (size_t i = 0; i < family->parameters().size(); ++i) {
      nlohmann::json values = nlohmann::json::array();
      for (double v : axes.parameters[i])  // NaN (derived from another key) has no JSON number
        values.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
      model[std::string(family->parameters()[i].key)] = std::move(values);
    }
  } else {
    model.update({{"n_neurons", axes.n_neurons},
                  {"timesteps", axes.timesteps},
                  {"p_connect", axes.p_connect},
                  {"eta", axes.eta},
                  {"observed_ratio", axes.observed_ratio},
                  {"perturb", axes.perturb},
                  {"nonlinearity", to_string(config.model.nonlinearity)},
                  {"p_inhibitory", config.model.p_inhibitory},
                  {"connectivity_file", config.model.connectivity_file}});
  }
  return {
      {"name", config.name},
      {"description", config.description},
      {"source_name", config.source_name},
      {"model", std::move(model)},
      {"scores",
       {{"roc_seeds", config.roc_seeds},
        {"keep_matrices", config.keep_matrices == KeepMatrices::all          ? "all"
                          : config.keep_matrices == KeepMatrices::first_seed ? "first_seed"
                                                                             : "none"}}},
      {"seeds", axes.seeds},
      {"estimators", std::move(estimators)},
      {"run",
       {{"backend", to_string(config.run.backend)},
        {"threads", config.run.threads},
        {"batch_size", config.run.batch_size},
        {"devices", config.run.devices},
        {"output", config.run.output_dir}}},
      {"slurm",
       {{"partition", config.slurm.partition},
        {"account", config.slurm.account},
        {"time", config.slurm.time},
        {"mem", config.slurm.mem},
        {"gpus_per_task", config.slurm.gpus_per_task},
        {"cpus_per_task", config.slurm.cpus_per_task},
        {"tasks", config.slurm.tasks},
        {"throttle", config.slurm.throttle}}},
  };
}

}  // namespace causalsweep
