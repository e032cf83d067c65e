#include "plot.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "causalsweep/config.hpp"  // InputError
#include "causalsweep/model_family.hpp"
#include "summary.hpp"

namespace causalsweep::plot {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Names and labels

std::string score_label(const std::string& score) {
  static const std::map<std::string, std::string> labels{
      {"corr_with_truth", "correlation with true A"},
      {"auc", "AUC of |V| for A != 0"},
      {"tpr", "true positive rate (detected / connected)"},
      {"fpr", "false positive rate (detected / unconnected)"},
      {"first_stage_f", "first-stage F (weakest regressor)"},
      {"tpr_exc", "excitatory inputs detected"},
      {"tpr_inh", "inhibitory inputs detected"},
      {"auc_exc", "AUC, excitatory vs unconnected"},
      {"auc_inh", "AUC, inhibitory vs unconnected"},
      {"output_rate", "output firing rate (Hz)"},
  };
  const auto it = labels.find(score);
  return it == labels.end() ? score : it->second;
}

// The values a score can take: a std band is drawn within them (an AUC band never passes 1).
std::pair<double, double> score_range(const std::string& score) {
  static const std::set<std::string> rates{"auc", "tpr", "fpr", "tpr_exc", "tpr_inh", "auc_exc", "auc_inh"};
  if (rates.count(score)) return {0.0, 1.0};
  if (score == "output_rate") return {0.0, INFINITY};
  if (score == "corr_with_truth") return {-1.0, 1.0};
  return {-INFINITY, INFINITY};
}

std::string axis_label(const std::string& axis) {
  static const std::map<std::string, std::string> labels{
      {"observed_ratio", "observed ratio k/n"},
      {"eta", "instrument strength eta"},
      {"n_neurons", "network size n (neurons)"},
      {"timesteps", "recording length T (time steps)"},
      {"p_connect", "connection probability p"},
  };
  const auto it = labels.find(axis);
  if (it != labels.end()) return it->second;
  for (const auto name : model_family_names())  // another family's parameter: its own description
    if (const ModelFamily* family = find_model_family(name))
      for (const ModelParameter& p : family->parameters())
        if (p.key == axis) return std::string(p.description);
  return axis;
}

std::string axis_short(const std::string& axis) {
  static const std::map<std::string, std::string> names{
      {"observed_ratio", "ratio"}, {"eta", "eta"}, {"n_neurons", "n"}, {"timesteps", "T"}, {"p_connect", "p"}};
  const auto it = names.find(axis);
  return it == names.end() ? axis : it->second;
}

// Shortest text that reads back as the same double: the .dat files hold exactly the plotted numbers.
std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

std::optional<double> to_number(const std::string& field) {
  char* end = nullptr;
  const double v = std::strtod(field.c_str(), &end);
  if (field.empty() || end != field.c_str() + field.size()) return std::nullopt;
  return v;
}

// An axis value as a key and as text: numbers compare by value whatever their spelling (2, 2.0).
std::string normalized(const std::string& field) {
  const auto v = to_number(field);
  return v ? num(*v) : field;
}
std::string pretty(const std::string& field) {
  const auto v = to_number(field);
  return v ? fmt::format("{:g}", *v) : field;
}

std::string file_safe(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  return out;
}

// A gnuplot double-quoted string; lines joined with gnuplot's "\n" escape.
std::string gp_string(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\\n";
    for (char c : lines[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out + "\"";
}
std::string gp_string(const std::string& text) { return gp_string(std::vector<std::string>{text}); }

// ---------------------------------------------------------------------------------------------
// The run directory

struct Axis {
  std::string name;
  std::vector<std::string> values;  // distinct, normalized; numeric axes sorted by value
  bool numeric = true;
  bool geometric = false;  // >= 3 positive values with one constant ratio (a log-spaced axis)
  double min = 0, max = 0;
};

struct RunData {
  fs::path dir;
  CsvTable runs, curves;
  nlohmann::json manifest;
  std::vector<Axis> axes;  // the sweep's axes: curves.csv's columns that are not statistics
  std::vector<std::string> scores, estimators;
  int runs_estimator, runs_score, runs_value, runs_seed, runs_network, runs_observed;
  int curves_estimator, curves_score, curves_mean, curves_std, curves_count;
  std::vector<int> runs_axis, curves_axis;  // per axis, its column in each table
  std::vector<std::vector<std::string>> runs_norm, curves_norm;  // per row and axis: the normalized value
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> runs_rows, curves_rows;  // (score, estimator)
  size_t seeds = 0;

  const Axis* axis(const std::string& name) const {
    for (const auto& a : axes)
      if (a.name == name) return &a;
    return nullptr;
  }
  size_t axis_index(const std::string& name) const {
    for (size_t i = 0; i < axes.size(); ++i)
      if (axes[i].name == name) return i;
    return axes.size();
  }
};

bool is_geometric(const std::vector<double>& v) {
  if (v.size() < 3 || v.front() <= 0) return false;
  const double ratio = v[1] / v[0];
  if (std::fabs(ratio - 1) < 1e-9) return false;
  for (size_t i = 1; i + 1 < v.size(); ++i)
    if (std::fabs(v[i + 1] / v[i] / ratio - 1) > 1e-3) return false;
  return true;
}

RunData load(const fs::path& dir) {
  check_run_directory(dir);
  RunData d;
  d.dir = dir;
  d.runs = read_csv((dir / "runs.csv").string());
  d.curves = read_csv((dir / "curves.csv").string());
  {
    std::ifstream in(dir / "manifest.json");
    try {
      d.manifest = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("'{}': not valid JSON ({})", (dir / "manifest.json").string(), e.what()));
    }
  }
  if (d.runs.rows.empty()) throw InputError(fmt::format("'{}' has no rows: nothing to plot", d.runs.name));
  if (d.curves.rows.empty()) throw InputError(fmt::format("'{}' has no rows: nothing to plot", d.curves.name));
  d.runs_estimator = d.runs.require("estimator");
  d.runs_score = d.runs.require("score");
  d.runs_value = d.runs.require("value");
  d.runs_seed = d.runs.require("seed");
  d.runs_network = d.runs.require("network");
  d.runs_observed = d.runs.column("observed");
  d.curves_estimator = d.curves.require("estimator");
  d.curves_score = d.curves.require("score");
  d.curves_mean = d.curves.require("mean");
  d.curves_std = d.curves.require("std");
  d.curves_count = d.curves.require("count");

  for (size_t c = 0; c < d.curves.columns.size(); ++c) {
    const std::string& name = d.curves.columns[c];
    if (is_curve_statistic_column(name)) continue;
    Axis axis;
    axis.name = name;
    std::set<std::string> seen;
    std::vector<double> numbers;
    for (const auto& row : d.curves.rows) {
      const std::string value = normalized(row[c]);
      if (!seen.insert(value).second) continue;
      axis.values.push_back(value);
      const auto v = to_number(value);
      if (v && std::isfinite(*v))
        numbers.push_back(*v);
      else
        axis.numeric = false;
    }
    if (axis.numeric) {
      std::sort(numbers.begin(), numbers.end());
      axis.values.clear();
      for (double v : numbers) axis.values.push_back(num(v));
      axis.geometric = is_geometric(numbers);
      axis.min = numbers.front();
      axis.max = numbers.back();
    }
    d.curves_axis.push_back(static_cast<int>(c));
    d.runs_axis.push_back(d.runs.require(name));  // runs.csv must carry every axis of curves.csv
    d.axes.push_back(std::move(axis));
  }
  // Indexes, so that drawing a large sweep reads each row a few times rather than once per figure.
  for (const auto& row : d.runs.rows) {
    std::vector<std::string> values;
    for (int c : d.runs_axis) values.push_back(normalized(row[static_cast<size_t>(c)]));
    d.runs_norm.push_back(std::move(values));
  }
  for (const auto& row : d.curves.rows) {
    std::vector<std::string> values;
    for (int c : d.curves_axis) values.push_back(normalized(row[static_cast<size_t>(c)]));
    d.curves_norm.push_back(std::move(values));
  }
  for (size_t r = 0; r < d.curves.rows.size(); ++r)
    d.curves_rows[{d.curves.rows[r][static_cast<size_t>(d.curves_score)],
                   d.curves.rows[r][static_cast<size_t>(d.curves_estimator)]}]
        .push_back(r);
  std::set<std::string> seeds;
  for (size_t r = 0; r < d.runs.rows.size(); ++r) {
    const auto& row = d.runs.rows[r];
    d.runs_rows[{row[static_cast<size_t>(d.runs_score)], row[static_cast<size_t>(d.runs_estimator)]}].push_back(r);
    const std::string& score = row[static_cast<size_t>(d.runs_score)];
    const std::string& estimator = row[static_cast<size_t>(d.runs_estimator)];
    if (std::find(d.scores.begin(), d.scores.end(), score) == d.scores.end()) d.scores.push_back(score);
    if (std::find(d.estimators.begin(), d.estimators.end(), estimator) == d.estimators.end())
      d.estimators.push_back(estimator);
    seeds.insert(row[static_cast<size_t>(d.runs_seed)]);
    d.runs.number(r, d.runs_value);  // a corrupt value fails here, naming its line
  }
  for (size_t r = 0; r < d.curves.rows.size(); ++r) {
    d.curves.number(r, d.curves_mean);
    d.curves.number(r, d.curves_std);
    d.curves.number(r, d.curves_count);
  }
  d.seeds = seeds.size();
  return d;
}

// ---------------------------------------------------------------------------------------------
// Figure scripts

class Figures {
 public:
  explicit Figures(fs::path dir) : dir_(std::move(dir)) {}

  void write(const std::string& file, const std::string& content) const {
    std::ofstream out(dir_ / file, std::ios::binary);
    out << content;
    if (!out.flush()) throw InputError(fmt::format("cannot write '{}'", (dir_ / file).string()));
  }

  // NAME.gp: `body` draws the figure; it is wrapped to write NAME.png and NAME.svg.
  // NAME.gp: `settings` and `body` draw the figure; they run once for NAME.png and once for NAME.svg.
  void add(const Figure& figure, const std::string& settings, const std::string& body, int width, int height) {
    std::string indented;
    std::stringstream lines(settings);
    for (std::string line; std::getline(lines, line);) indented += "  " + line + "\n";
    std::string script = fmt::format(
        "# {}\n# Drawn by causalsweep plot from the data files next to it; edit and run `gnuplot {}.gp` to redraw\n"
        "# {}.png and {}.svg (style.gp holds the colours, fonts and line styles of every figure).\n"
        "do for [format in \"png svg\"] {{\n  reset\n  load 'style.gp'\n  eval terminal(format, {}, {})\n"
        "  set output '{}.'.format\n{}{}\n  unset output\n}}\n",
        figure.title, figure.name, figure.name, figure.name, width, height, figure.name, indented, body);
    write(figure.name + ".gp", script);
    figures.push_back(figure);
  }

  std::vector<Figure> figures;
  std::vector<std::string> notes;

 private:
  fs::path dir_;
};

const char* kStyle = R"(# causalsweep figure style, loaded by every NAME.gp here: edit it to restyle all figures, then
# redraw them with `for f in *.gp; do [ "$f" = style.gp ] || gnuplot "$f"; done`.
terminal(format, w, h) = format eq "png" \
  ? sprintf("set terminal pngcairo size %d,%d font 'DejaVu Sans,11' noenhanced background rgb 'white'", w, h) \
  : sprintf("set terminal svg size %d,%d font 'DejaVu Sans,11' noenhanced background rgb 'white'", w, h)

# Okabe-Ito colours (safe for colour-blind readers), each with its own dash and point type, so the
# lines stay apart when printed in grey.
set linetype 1 lc rgb '#0072B2' lw 2 dt 1 pt 7 ps 1.1
set linetype 2 lc rgb '#D55E00' lw 2 dt 2 pt 5 ps 1.0
set linetype 3 lc rgb '#009E73' lw 2 dt 4 pt 9 ps 1.2
set linetype 4 lc rgb '#E69F00' lw 2 dt 5 pt 13 ps 1.2
set linetype 5 lc rgb '#CC79A7' lw 2 dt 3 pt 11 ps 1.2
set linetype 6 lc rgb '#56B4E9' lw 2 dt (12,4,2,4) pt 6 ps 1.1
set linetype 7 lc rgb '#000000' lw 2 dt (2,4) pt 4 ps 1.1
set linetype 8 lc rgb '#999999' lw 2 dt (8,4,2,4,2,4) pt 8 ps 1.1
set linetype cycle 8
# The same colours, 55% transparent, for the per-seed dots.
dotcolor(i) = word("#730072B2 #73D55E00 #73009E73 #73E69F00 #73CC79A7 #7356B4E9 #73000000 #73999999", (i - 1) % 8 + 1)
bandcolor(i) = word("#0072B2 #D55E00 #009E73 #E69F00 #CC79A7 #56B4E9 #000000 #999999", (i - 1) % 8 + 1)

# Heatmaps: viridis, perceptually uniform and monotone in lightness (readable in grey).
set palette defined (0 '#440154', 1 '#472C7A', 2 '#3B518B', 3 '#2C718E', 4 '#21908D', 5 '#27AD81', \
                     6 '#5CC863', 7 '#AADC32', 8 '#FDE725')
set grid lc rgb '#DDDDDD' lw 1 dt 1
set key outside right top vertical Left reverse noautotitle
set border lw 1
)";

// The x axis: label, range (observed ratio from high to low, as Tutorial 4 draws it), log scale
// and tics at the grid values when the values are geometric.
std::string x_settings(const Axis& axis, bool padded) {
  std::string s = fmt::format("set xlabel {}\n", gp_string(axis_label(axis.name)));
  double lo = axis.min, hi = axis.max;
  if (axis.geometric) {
    s += "set logscale x\n";
    const double pad = padded ? std::pow(hi / lo, 0.05) : 1.0;
    lo /= pad;
    hi *= pad;
  } else if (hi == lo) {
    const double pad = lo == 0 ? 0.5 : 0.1 * std::fabs(lo);
    lo -= pad;
    hi += pad;
  } else if (padded) {
    const double pad = 0.05 * (hi - lo);
    lo -= pad;
    hi += pad;
  }
  if (axis.name == "observed_ratio")
    s += fmt::format("set xrange [{}:{}]\n", num(hi), num(lo));
  else
    s += fmt::format("set xrange [{}:{}]\n", num(lo), num(hi));
  if (axis.values.size() <= 12) {
    std::vector<std::string> tics;
    for (const auto& v : axis.values) tics.push_back(fmt::format("{} {}", gp_string(pretty(v)), v));
    s += fmt::format("set xtics ({})\n", fmt::join(tics, ", "));
  }
  return s;
}

// The line under a figure's title: the sweep's fixed settings and this facet's values.
std::string context_line(const RunData& d, const std::string& plotted, const std::vector<size_t>& facet_axes,
                         const std::vector<std::string>& facet_values) {
  std::vector<std::string> parts;
  for (size_t a = 0; a < d.axes.size(); ++a) {
    if (d.axes[a].name == plotted) continue;
    const auto f = std::find(facet_axes.begin(), facet_axes.end(), a);
    if (f != facet_axes.end())
      parts.push_back(fmt::format("{} = {}", axis_short(d.axes[a].name), pretty(facet_values[f - facet_axes.begin()])));
    else if (d.axes[a].values.size() == 1)
      parts.push_back(fmt::format("{} = {}", axis_short(d.axes[a].name), pretty(d.axes[a].values[0])));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

// Whether a row's (normalized) axis values are those of a facet.
bool matches(const std::vector<std::string>& row_axes, const std::vector<size_t>& facet_axes,
             const std::vector<std::string>& values) {
  for (size_t i = 0; i < facet_axes.size(); ++i)
    if (row_axes[facet_axes[i]] != values[i]) return false;
  return true;
}

struct MeanPoint {
  double x, mean, std;
  long count;
};

// The curve of one estimator and score in one facet: curves.csv's rows, sorted by x.
std::vector<MeanPoint> curve_points(const RunData& d, const std::string& score, const std::string& estimator,
                                    size_t x_axis, const std::vector<size_t>& facet_axes,
                                    const std::vector<std::string>& facet_values) {
  std::vector<MeanPoint> points;
  const CsvTable& t = d.curves;
  const auto rows = d.curves_rows.find({score, estimator});
  if (rows == d.curves_rows.end()) return points;
  for (size_t r : rows->second) {
    if (!matches(d.curves_norm[r], facet_axes, facet_values)) continue;
    const double mean = t.number(r, d.curves_mean), count = t.number(r, d.curves_count);
    if (count < 1 || !std::isfinite(mean)) continue;
    points.push_back({t.number(r, d.curves_axis[x_axis]), mean, t.number(r, d.curves_std), static_cast<long>(count)});
  }
  std::sort(points.begin(), points.end(), [](const MeanPoint& a, const MeanPoint& b) { return a.x < b.x; });
  return points;
}

struct Dot {
  double x, value;
  std::string seed;
};

std::vector<Dot> dots(const RunData& d, const std::string& score, const std::string& estimator, size_t x_axis,
                      const std::vector<size_t>& facet_axes, const std::vector<std::string>& facet_values) {
  std::vector<Dot> out;
  const CsvTable& t = d.runs;
  const auto rows = d.runs_rows.find({score, estimator});
  if (rows == d.runs_rows.end()) return out;
  for (size_t r : rows->second) {
    if (!matches(d.runs_norm[r], facet_axes, facet_values)) continue;
    const double value = t.number(r, d.runs_value);
    if (!std::isfinite(value)) continue;
    out.push_back({t.number(r, d.runs_axis[x_axis]), value, t.rows[r][static_cast<size_t>(d.runs_seed)]});
  }
  std::stable_sort(out.begin(), out.end(), [](const Dot& a, const Dot& b) { return a.x < b.x; });
  return out;
}

// The y axis for a score, shared by all panels of a figure so they compare at a glance: log for
// the F statistic (which spans decades with eta), with the F = 10 weak-instrument line in range.
std::string y_settings(const std::string& score, double lo, double hi) {
  std::string s = fmt::format("set ylabel {}\n", gp_string(score_label(score)));
  if (score == "first_stage_f" && lo > 0) {
    lo = std::min(lo, 10.0) / 1.5;
    hi = std::max(hi, 10.0) * 1.5;
    s += "set logscale y\n";
  } else {
    const double pad = hi > lo ? 0.05 * (hi - lo) : std::max(0.05, 0.05 * std::fabs(hi));
    lo -= pad;
    hi += pad;
  }
  return s + fmt::format("set yrange [{}:{}]\n", num(lo), num(hi));
}
const char* kWeakInstrument = "10 with lines lc rgb '#555555' dt 3 lw 1.5";

// Figures of one score against one axis: a band figure (mean +- population std, from curves.csv)
// or a dots figure (one dot per seed from runs.csv, mean line from curves.csv). When other axes
// vary, each combination of their values is a panel (small multiples with a shared y axis and one
// legend cell), at most kMaxPanels panels a figure and kMaxPages figures.
void score_figures(const RunData& d, Figures& out, const std::string& score, size_t x_axis, bool band) {
  const Axis& axis = d.axes[x_axis];
  std::vector<size_t> facet_axes;
  for (size_t a = 0; a < d.axes.size(); ++a)
    if (a != x_axis && d.axes[a].values.size() > 1) facet_axes.push_back(a);
  // The combinations of the other varying axes that this score has, in file order.
  std::vector<std::vector<std::string>> facets;
  std::set<std::vector<std::string>> seen;
  for (size_t r = 0; r < d.curves.rows.size(); ++r) {
    if (d.curves.rows[r][static_cast<size_t>(d.curves_score)] != score) continue;
    std::vector<std::string> values;
    for (size_t a : facet_axes) values.push_back(d.curves_norm[r][a]);
    if (seen.insert(values).second) facets.push_back(values);
  }
  size_t pages = (facets.size() + kMaxPanels - 1) / kMaxPanels;
  if (pages > static_cast<size_t>(kMaxPages)) {
    out.notes.push_back(fmt::format("{} against {}: {} combinations of the other axes; the first {} are drawn", score,
                                    axis.name, facets.size(), kMaxPages * kMaxPanels));
    pages = static_cast<size_t>(kMaxPages);
    facets.resize(pages * kMaxPanels);
  }
  const size_t per_page = (facets.size() + pages - 1) / std::max<size_t>(pages, 1);  // balanced: 18 = 9 + 9
  // The estimators with a value of this score: their dots are spread around each grid value.
  std::vector<size_t> present;
  for (size_t e = 0; e < d.estimators.size(); ++e) {
    const auto rows = d.curves_rows.find({score, d.estimators[e]});
    if (rows != d.curves_rows.end() &&
        std::any_of(rows->second.begin(), rows->second.end(), [&](size_t r) { return d.curves.number(r, d.curves_count) > 0; }))
      present.push_back(e);
  }
  const std::string context = context_line(d, axis.name, {}, {});
  const std::string what = band ? fmt::format("mean ± std over {} seeds", d.seeds)
                                : fmt::format("dots: one per seed ({} seeds), lines: mean", d.seeds);
  for (size_t page = 0; page < pages; ++page) {
    const size_t first = page * per_page, last = std::min(facets.size(), first + per_page);
    const std::string name = file_safe(score + "_vs_" + axis.name + (band ? "" : "_dots") +
                                       (pages > 1 ? fmt::format("_{}", page + 1) : ""));
    std::string data = fmt::format(
        "# {} against {}: mean and population std over seeds, from curves.csv; one block per panel and estimator\n",
        score, axis.name);
    std::string seed_data = fmt::format("# {} against {}: one value per seed, from runs.csv\n", score, axis.name);
    double lo = INFINITY, hi = -INFINITY;
    std::vector<std::vector<std::string>> panels;  // the plot clauses of each panel
    std::vector<std::string> panel_titles;
    std::vector<bool> used(d.estimators.size(), false);
    int block = 0;
    for (size_t f = first; f < last; ++f) {
      std::vector<std::string> clauses, lines;
      std::string facet_text, facet_title;
      for (size_t i = 0; i < facet_axes.size(); ++i) {
        facet_text += fmt::format(" {}={}", d.axes[facet_axes[i]].name, facets[f][i]);
        facet_title += fmt::format("{}{} = {}", i ? ", " : "", axis_short(d.axes[facet_axes[i]].name), pretty(facets[f][i]));
      }
      for (size_t e = 0; e < d.estimators.size(); ++e) {
        const std::string& estimator = d.estimators[e];
        const auto points = curve_points(d, score, estimator, x_axis, facet_axes, facets[f]);
        const auto seeds = band ? std::vector<Dot>{} : dots(d, score, estimator, x_axis, facet_axes, facets[f]);
        if (points.empty() && seeds.empty()) continue;  // e.g. first_stage_f of a non-IV estimator
        used[e] = true;
        const int lt = static_cast<int>(e) + 1;
        const std::string block_line = fmt::format("# block {}: estimator={}{}\n", block, estimator, facet_text);
        data += fmt::format("\n\n{}# {} mean std band_low band_high count (band: mean -+ std, within the score's range)\n",
                            block_line, axis.name);
        const auto [lowest, highest] = score_range(score);
        for (const auto& p : points) {
          data += fmt::format("{} {} {} {} {} {}\n", num(p.x), num(p.mean), num(p.std),
                              num(std::max(lowest, p.mean - p.std)), num(std::min(highest, p.mean + p.std)), p.count);
          // The band's lower edge, unless it would leave a log axis (first_stage_f).
          const bool keep_log = score == "first_stage_f" && p.mean - p.std <= 0;
          lo = std::min(lo, band && !keep_log ? std::max(lowest, p.mean - p.std) : p.mean);
          hi = std::max(hi, band ? std::min(highest, p.mean + p.std) : p.mean);
        }
        const std::string title = facets.size() == 1 ? "title " + gp_string(estimator) : std::string("notitle");
        if (band) {
          clauses.push_back(fmt::format("'{}.dat' index {} using 1:4:5 with filledcurves lc rgb bandcolor({}) notitle",
                                        name, block, lt));
          lines.push_back(fmt::format("'{}.dat' index {} using 1:2 with linespoints lt {} {}", name, block, lt, title));
        } else {
          seed_data += fmt::format("\n\n{}# {} value seed\n", block_line, axis.name);
          for (const auto& s : seeds) {
            seed_data += fmt::format("{} {} {}\n", num(s.x), num(s.value), s.seed);
            lo = std::min(lo, s.value);
            hi = std::max(hi, s.value);
          }
          // Each estimator's dots sit a little to the side of the grid value, so they do not overlap.
          const auto slot = static_cast<double>(std::find(present.begin(), present.end(), e) - present.begin());
          const double shift = (slot - (static_cast<double>(present.size()) - 1) / 2) * 0.012;
          const double span = axis.max > axis.min ? axis.max - axis.min : std::max(1.0, std::fabs(axis.max));
          const std::string x = axis.geometric ? fmt::format("($1 * {})", num(std::pow(axis.max / axis.min, shift)))
                                               : fmt::format("($1 + {})", num(shift * span));
          clauses.push_back(fmt::format("'{}_seeds.dat' index {} using {}:2 with points lt {} lc rgb dotcolor({}) ps 0.7 "
                                        "notitle", name, block, x, lt, lt));
          lines.push_back(fmt::format("'{}.dat' index {} using 1:2 with linespoints lt {} lw 3 {}", name, block, lt,
                                      title));
        }
        ++block;
      }
      if (clauses.empty()) continue;
      clauses.insert(clauses.end(), lines.begin(), lines.end());
      if (score == "first_stage_f")
        clauses.push_back(std::string(kWeakInstrument) + (facets.size() == 1 ? " title 'F = 10 (weak instrument)'" : " notitle"));
      panels.push_back(clauses);
      panel_titles.push_back(facet_title);
    }
    if (panels.empty()) continue;

    const std::string title = gp_string(
        {score_label(score) + " vs " + axis_label(axis.name), context.empty() ? what : context + "; " + what});
    std::string settings = x_settings(axis, !band) + y_settings(score, lo, hi);
    if (band) settings += "set style fill transparent solid 0.18 noborder\n";
    std::string body;
    int width = 960, height = 560;
    if (facet_axes.empty()) {
      settings += "set title " + title + "\n";
      body = "  plot " + fmt::format("{}", fmt::join(panels[0], ", \\\n    "));
    } else {
      // Small multiples: one panel per combination, then a cell with the legend.
      const size_t cells = panels.size() + 1;
      const size_t cols = cells <= 3 ? cells : cells == 4 ? 2 : 3, rows = (cells + cols - 1) / cols;
      width = static_cast<int>(cols) * 430;
      height = static_cast<int>(rows) * 320 + 60;
      body = fmt::format("  set multiplot layout {},{} title {}\n", rows, cols, title);
      for (size_t p = 0; p < panels.size(); ++p)
        body += fmt::format("  set title {}\n  plot {}\n", gp_string(panel_titles[p]),
                            fmt::join(panels[p], ", \\\n    "));
      std::vector<std::string> legend;
      for (size_t e = 0; e < d.estimators.size(); ++e)
        if (used[e])
          legend.push_back(fmt::format("keyentry with linespoints lt {} lw {} title {}", e + 1, band ? 2 : 3,
                                       gp_string(d.estimators[e])));
      if (score == "first_stage_f") legend.push_back("keyentry with lines lc rgb '#555555' dt 3 lw 1.5 title 'F = 10 (weak instrument)'");
      body += fmt::format("  # the legend cell\n  unset title\n  unset border\n  unset tics\n  unset grid\n  unset xlabel\n"
                          "  unset ylabel\n  unset logscale\n  set xrange [0:1]\n  set yrange [0:1]\n"
                          "  set key inside center center noreverse Right samplen 5 spacing 1.6 font ',13'\n  plot {}, \\\n    -1 notitle\n  unset multiplot",
                          fmt::join(legend, ", \\\n    "));
    }
    const Figure figure{name, score,
                        fmt::format("{} against {}{}{}{}; {}", score_label(score), axis_label(axis.name),
                                    context.empty() ? "" : ": ", context,
                                    facet_axes.empty() ? "" : fmt::format(" (one panel per {})", [&] {
                                      std::vector<std::string> names;
                                      for (size_t a : facet_axes) names.push_back(axis_short(d.axes[a].name));
                                      return fmt::format("{}", fmt::join(names, ", "));
                                    }()),
                                    what)};
    out.write(name + ".dat", data);
    if (!band) out.write(name + "_seeds.dat", seed_data);
    out.add(figure, settings, body, width, height);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-run figures: ROC curves and connectivity matrices

// Lookup of a run's settings in runs.csv for titles: "network 3 (seed 3), n = 40, eta = 2".
std::string run_context(const RunData& d, const std::string& network, const std::string& observed) {
  for (size_t r = 0; r < d.runs.rows.size(); ++r) {
    const auto& row = d.runs.rows[r];
    if (normalized(row[static_cast<size_t>(d.runs_network)]) != normalized(network)) continue;
    if (d.runs_observed >= 0 && normalized(row[static_cast<size_t>(d.runs_observed)]) != normalized(observed)) continue;
    std::vector<std::string> parts{fmt::format("network {} (seed {})", network, row[static_cast<size_t>(d.runs_seed)])};
    for (size_t a = 0; a < d.axes.size(); ++a)
      if (d.axes[a].name != "observed_ratio")
        parts.push_back(fmt::format("{} = {}", axis_short(d.axes[a].name),
                                    pretty(row[static_cast<size_t>(d.runs_axis[a])])));
    if (!observed.empty()) parts.push_back(fmt::format("k = {} observed", observed));
    return fmt::format("{}", fmt::join(parts, ", "));
  }
  return observed.empty() ? fmt::format("network {}", network) : fmt::format("network {}, k = {} observed", network, observed);
}

// The run's own AUC from runs.csv (the n_to_1 family's step rule differs from trapezoids), if there.
std::optional<double> run_auc(const RunData& d, const std::string& network, const std::string& observed,
                              const std::string& estimator) {
  const auto it = d.runs_rows.find({"auc", estimator});
  if (it == d.runs_rows.end()) return std::nullopt;
  for (size_t r : it->second) {
    const auto& row = d.runs.rows[r];
    if (normalized(row[static_cast<size_t>(d.runs_network)]) != network) continue;
    if (d.runs_observed >= 0 && normalized(row[static_cast<size_t>(d.runs_observed)]) != observed) continue;
    return to_number(row[static_cast<size_t>(d.runs_value)]);
  }
  return std::nullopt;
}

struct RunKey {
  std::string network, observed;
  bool operator==(const RunKey&) const = default;
};

double trapezoid_auc(std::vector<std::pair<double, double>> roc) {
  roc.emplace_back(0.0, 0.0);
  roc.emplace_back(1.0, 1.0);
  std::sort(roc.begin(), roc.end());
  double auc = 0;
  for (size_t i = 1; i < roc.size(); ++i) auc += (roc[i].first - roc[i - 1].first) * (roc[i].second + roc[i - 1].second) / 2;
  return auc;
}

void roc_figures(const RunData& d, Figures& out) {
  const fs::path path = d.dir / "roc.csv";
  if (!fs::exists(path)) return;
  const CsvTable t = read_csv(path.string());
  // observed: the rate model's k; model families without an observed ratio have no such column.
  const int network = t.require("network"), observed = t.column("observed"), estimator = t.require("estimator"),
            fpr = t.require("fpr"), tpr = t.require("tpr"), threshold = t.column("threshold"), method = t.column("method");
  const auto observed_of = [&](size_t r) {
    return observed >= 0 ? normalized(t.rows[r][static_cast<size_t>(observed)]) : std::string();
  };
  bool by_p_value = false;  // the n_to_1 family's shuffle test ranks inputs by p-value
  std::vector<RunKey> keys;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (method >= 0 && t.rows[r][static_cast<size_t>(method)] == "sta_shuffle") by_p_value = true;
    const RunKey key{normalized(t.rows[r][static_cast<size_t>(network)]), observed_of(r)};
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    for (int c : {fpr, tpr}) {
      const double v = t.number(r, c);
      if (!(v >= 0 && v <= 1))
        throw InputError(fmt::format("'{}' line {}: {} = {} is not a rate in [0, 1]", t.name, t.lines[r],
                                     t.columns[static_cast<size_t>(c)], t.rows[r][static_cast<size_t>(c)]));
    }
  }
  if (keys.size() > static_cast<size_t>(kMaxRunFigures)) {
    out.notes.push_back(fmt::format("roc.csv holds ROC points of {} runs; the first {} are drawn", keys.size(), kMaxRunFigures));
    keys.resize(kMaxRunFigures);
  }
  for (const RunKey& key : keys) {
    const std::string name = file_safe(key.observed.empty() ? fmt::format("roc_net{}", key.network)
                                                            : fmt::format("roc_net{}_k{}", key.network, key.observed));
    std::vector<std::string> estimators;
    std::map<std::string, std::vector<size_t>> rows;
    for (size_t r = 0; r < t.rows.size(); ++r) {
      if (normalized(t.rows[r][static_cast<size_t>(network)]) != key.network || observed_of(r) != key.observed)
        continue;
      const std::string& e = t.rows[r][static_cast<size_t>(estimator)];
      if (!rows.count(e)) estimators.push_back(e);
      rows[e].push_back(r);
    }
    std::string data = key.observed.empty()
                           ? fmt::format("# ROC of network {}, from roc.csv\n", key.network)
                           : fmt::format("# ROC of network {}, {} observed neurons, from roc.csv\n", key.network, key.observed);
    std::vector<std::string> plots{"x with lines lc rgb '#888888' dt 3 lw 1 title 'chance (AUC 0.5)'"};
    int block = 0;
    for (const std::string& e : estimators) {
      std::vector<std::pair<double, double>> points;
      std::vector<double> thresholds;
      for (size_t r : rows[e]) {
        points.emplace_back(t.number(r, fpr), t.number(r, tpr));
        thresholds.push_back(threshold >= 0 ? t.number(r, threshold) : NAN);
      }
      std::vector<size_t> order(points.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return points[a] < points[b]; });
      // The rate model's AUC is the trapezoid area of its full ROC; the shuffle test's is its step rule.
      const double auc = by_p_value ? run_auc(d, key.network, key.observed, e).value_or(trapezoid_auc(points))
                                    : trapezoid_auc(points);
      data += fmt::format("\n\n# estimator: {} (AUC {:.3f})\n# fpr tpr threshold\n", e, auc);
      for (size_t i : order) data += fmt::format("{} {} {}\n", num(points[i].first), num(points[i].second), num(thresholds[i]));
      const size_t lt = std::find(d.estimators.begin(), d.estimators.end(), e) - d.estimators.begin() + 1;
      plots.push_back(fmt::format("'{}.dat' index {} using 1:2 with {} lt {} title {}", name, block,
                                  points.size() <= 30 ? "linespoints" : "lines", lt,
                                  gp_string(fmt::format("{} (AUC {:.3f})", e, auc))));
      ++block;
    }
    const std::string context = run_context(d, key.network, key.observed);
    const Figure figure{name, "ROC curves", fmt::format("ROC curves of {}", context)};
    const std::string settings =
        fmt::format("set title {}\nset size ratio -1\nset xrange [0:1]\nset yrange [0:1]\n"
                    "set xlabel 'false positive rate (detected / unconnected)'\n"
                    "set ylabel 'true positive rate (detected / connected)'\n"
                    "set key inside right bottom box opaque\nset xtics 0.2\nset ytics 0.2\n",
                    gp_string({by_p_value ? "ROC curves: p-values ranking the connected inputs"
                                          : "ROC curves: |V| ranking the true connections A != 0",
                               context}));
    out.write(name + ".dat", data);
    out.add(figure, settings, "  plot " + fmt::format("{}", fmt::join(plots, ", \\\n    ")), 760, 640);
  }
}

// A matrix file: rows of comma-separated numbers, no header; InputError naming file and line.
std::vector<std::vector<double>> read_matrix(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read matrix file '{}': no such file or not readable", path.string()));
  std::vector<std::vector<double>> m;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream fields(line);
    std::string field;
    while (std::getline(fields, field, ',')) {
      const auto v = to_number(field);
      if (!v)
        throw InputError(fmt::format("matrix file '{}' line {}: column {} holds '{}', not a number", path.string(),
                                     number, row.size() + 1, field));
      row.push_back(*v);
    }
    if (!m.empty() && row.size() != m[0].size())
      throw InputError(fmt::format("matrix file '{}' line {}: {} values where the first row has {}", path.string(),
                                   number, row.size(), m[0].size()));
    m.push_back(std::move(row));
  }
  if (m.empty()) throw InputError(fmt::format("matrix file '{}' is empty", path.string()));
  return m;
}

double pearson(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double n = 0, sa = 0, sb = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j)
      if (std::isfinite(a[i][j]) && std::isfinite(b[i][j])) {
        ++n;
        sa += a[i][j];
        sb += b[i][j];
      }
  if (n < 2) return NAN;
  const double ma = sa / n, mb = sb / n;
  double saa = 0, sbb = 0, sab = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j)
      if (std::isfinite(a[i][j]) && std::isfinite(b[i][j])) {
        saa += (a[i][j] - ma) * (a[i][j] - ma);
        sbb += (b[i][j] - mb) * (b[i][j] - mb);
        sab += (a[i][j] - ma) * (b[i][j] - mb);
      }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : NAN;
}

fs::path matrix_path(const fs::path& matrices, const CsvTable& t, size_t row, int column) {
  const std::string& file = t.rows[row][static_cast<size_t>(column)];
  const fs::path p(file);
  if (file.empty() || p.is_absolute() || std::any_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; }))
    throw InputError(fmt::format("'{}' line {}: {} '{}' must be a file name inside matrices/", t.name, t.lines[row],
                                 t.columns[static_cast<size_t>(column)], file));
  return matrices / p;
}

void matrix_figures(const RunData& d, Figures& out) {
  const fs::path matrices = d.dir / "matrices";
  if (!fs::exists(matrices)) return;
  const CsvTable t = read_csv((matrices / "index.csv").string());
  const int network = t.require("network"), observed = t.require("observed"), estimator = t.require("estimator"),
            truth = t.require("truth"), estimate = t.require("estimate");
  std::vector<RunKey> keys;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const RunKey key{normalized(t.rows[r][static_cast<size_t>(network)]), normalized(t.rows[r][static_cast<size_t>(observed)])};
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  if (keys.size() > static_cast<size_t>(kMaxRunFigures)) {
    out.notes.push_back(fmt::format("matrices/ holds {} runs; the first {} are drawn", keys.size(), kMaxRunFigures));
    keys.resize(kMaxRunFigures);
  }
  for (const RunKey& key : keys) {
    const std::string name = file_safe(fmt::format("matrices_net{}_k{}", key.network, key.observed));
    std::vector<std::vector<std::vector<double>>> panels;
    std::vector<std::string> titles;
    for (size_t r = 0; r < t.rows.size(); ++r) {
      if (normalized(t.rows[r][static_cast<size_t>(network)]) != key.network ||
          normalized(t.rows[r][static_cast<size_t>(observed)]) != key.observed)
        continue;
      if (panels.empty()) {
        panels.push_back(read_matrix(matrix_path(matrices, t, r, truth)));
        titles.push_back(fmt::format("true A (observed {0} x {0} block)", panels[0].size()));
      }
      auto m = read_matrix(matrix_path(matrices, t, r, estimate));
      if (m.size() != panels[0].size() || m[0].size() != panels[0][0].size())
        throw InputError(fmt::format("'{}' line {}: estimate is {} x {} but the true matrix is {} x {}", t.name,
                                     t.lines[r], m.size(), m[0].size(), panels[0].size(), panels[0][0].size()));
      const double r_truth = pearson(panels[0], m);
      titles.push_back(fmt::format("{}: r = {}", t.rows[r][static_cast<size_t>(estimator)],
                                   std::isnan(r_truth) ? std::string("undefined") : fmt::format("{:.3f}", r_truth)));
      panels.push_back(std::move(m));
    }
    std::string data = fmt::format("# connectivity of network {} ({} observed), row = target i, column = source j\n",
                                   key.network, key.observed);
    for (size_t p = 0; p < panels.size(); ++p) {
      data += fmt::format("\n\n# {}\n", titles[p]);
      for (const auto& row : panels[p]) {
        std::vector<std::string> fields;
        for (double v : row) fields.push_back(num(v));
        data += fmt::format("{}\n", fmt::join(fields, " "));
      }
    }
    const size_t cols = std::min<size_t>(3, panels.size()), rows = (panels.size() + cols - 1) / cols;
    const size_t k = panels[0].size(), kc = panels[0][0].size();
    std::string body = fmt::format("  set multiplot layout {},{} title {}\n", rows, cols,
                                   gp_string(run_context(d, key.network, key.observed)));
    for (size_t p = 0; p < panels.size(); ++p)
      body += fmt::format("  set title {}\n  plot '{}.dat' index {} matrix with image\n", gp_string(titles[p]), name, p);
    body += "  unset multiplot";
    const std::string settings = fmt::format(
        "set size ratio -1\nunset grid\nset xrange [-0.5:{}]\nset yrange [{}:-0.5]\n"
        "set xlabel 'source j (from)'\nset ylabel 'target i (to)'\nset tics out\nset xtics 0, {}\nset ytics 0, {}\n",
        num(static_cast<double>(kc) - 0.5), num(static_cast<double>(k) - 0.5), (kc + 7) / 8, (k + 7) / 8);
    const Figure figure{name, "Connectivity matrices",
                        fmt::format("True and estimated connectivity of {}; r: correlation with true A",
                                    run_context(d, key.network, key.observed))};
    out.write(name + ".dat", data);
    out.add(figure, settings, body, static_cast<int>(cols) * 440, static_cast<int>(rows) * 390 + 40);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

void run_gnuplot(const std::string& gnuplot, const fs::path& dir, const std::vector<std::string>& scripts) {
  const fs::path log = dir / "gnuplot.log";
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot start gnuplot: {}", std::strerror(errno)));
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    std::vector<char*> argv{const_cast<char*>(gnuplot.c_str())};
    for (const auto& s : scripts) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string tail = text.str();
    if (tail.size() > 2000) tail = "..." + tail.substr(tail.size() - 2000);
    throw std::runtime_error(fmt::format("gnuplot ('{}') failed (status {}) drawing the figures in '{}':\n{}", gnuplot,
                                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, dir.string(), tail));
  }
  if (text.str().empty()) fs::remove(log);
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

void sync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string find_gnuplot() {
  if (const char* env = std::getenv("CAUSALSWEEP_GNUPLOT")) {
    return *env != '\0' && ::access(env, X_OK) == 0 ? std::string(env) : std::string();
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    const fs::path candidate = fs::path(d.empty() ? "." : d) / "gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

void check_run_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw InputError(fmt::format("run directory '{}' does not exist", dir.string()));
  if (!fs::is_directory(dir, ec))
    throw InputError(fmt::format("'{}' is not a directory: expected a run directory written by `causalsweep run`",
                                 dir.string()));
  bool sharded = false;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    sharded = sharded || entry.path().filename().string().rfind("shard-", 0) == 0;
  for (const char* file : {"runs.csv", "curves.csv", "manifest.json"})
    if (!fs::is_regular_file(dir / file, ec))
      throw InputError(fmt::format("'{}' is not a complete run directory: '{}' is missing{}", dir.string(), file,
                                   sharded ? fmt::format(" (a sharded sweep: run `causalsweep merge {}` first)", dir.string())
                                           : ""));
}

void write_file_replacing(const fs::path& path, const std::string& content) {
  const fs::path temp = path.parent_path() / fmt::format(".{}.tmp-{}", path.filename().string(), static_cast<long>(::getpid()));
  {
    FILE* file = std::fopen(temp.c_str(), "wb");
    bool ok = file != nullptr && std::fwrite(content.data(), 1, content.size(), file) == content.size() &&
              std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
    const int error = errno;
    if (file != nullptr) ok = std::fclose(file) == 0 && ok;
    if (!ok) {
      remove_quietly(temp);
      throw InputError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(error)));
    }
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    remove_quietly(temp);
    throw InputError(fmt::format("cannot write '{}': {}", path.string(), std::strerror(error)));
  }
  sync_path(path.parent_path(), O_RDONLY | O_DIRECTORY);
}

PlotOutcome plot_run_directory(const fs::path& dir) {
  const RunData d = load(dir);
  const std::string gnuplot = find_gnuplot();
  const fs::path final_dir = dir / "figures";
  const fs::path temp = dir / fmt::format(".figures.tmp-{}", static_cast<long>(::getpid()));
  remove_quietly(temp);
  std::error_code ec;
  fs::create_directory(temp, ec);
  if (ec) throw InputError(fmt::format("cannot create '{}': {}", temp.string(), ec.message()));
  PlotOutcome outcome;
  try {
    Figures figures(temp);
    figures.write("style.gp", kStyle);
    for (const std::string& score : d.scores) {
      for (const char* band_axis : {"observed_ratio", "eta"}) {
        const size_t a = d.axis_index(band_axis);
        if (a < d.axes.size() && d.axes[a].numeric && d.axes[a].values.size() > 1) score_figures(d, figures, score, a, true);
      }
      for (size_t a = 0; a < d.axes.size(); ++a) {
        const bool f_vs_eta = score == "first_stage_f" && d.axes[a].name == "eta";
        if (d.axes[a].numeric && (d.axes[a].values.size() > 1 || f_vs_eta)) score_figures(d, figures, score, a, false);
      }
    }
    roc_figures(d, figures);
    matrix_figures(d, figures);
    outcome.figures = figures.figures;
    outcome.notes = figures.notes;
    outcome.rendered = !gnuplot.empty();
    if (outcome.rendered) {
      std::vector<std::string> scripts;
      for (const auto& f : outcome.figures) scripts.push_back(f.name + ".gp");
      if (!scripts.empty()) run_gnuplot(gnuplot, temp, scripts);
      for (const auto& f : outcome.figures)
        for (const char* ext : {".png", ".svg"})
          if (fs::file_size(temp / (f.name + ext), ec) == 0 || ec)
            throw std::runtime_error(fmt::format("gnuplot wrote no '{}{}' in '{}'", f.name, ext, temp.string()));
    } else {
      outcome.notes.push_back(
          "gnuplot was not found (install it: Debian package gnuplot-nox, or set CAUSALSWEEP_GNUPLOT); figures/ holds "
          "the data and scripts only");
    }
    nlohmann::json index{{"rendered", outcome.rendered}, {"notes", outcome.notes}, {"figures", nlohmann::json::array()}};
    for (const auto& f : outcome.figures)
      index["figures"].push_back({{"name", f.name}, {"section", f.section}, {"title", f.title}});
    figures.write("index.json", index.dump(2) + "\n");
    for (const auto& entry : fs::directory_iterator(temp)) sync_path(entry.path(), O_RDONLY);
    sync_path(temp, O_RDONLY | O_DIRECTORY);
    // Swap in one step: the old figures/ moves aside, the new one takes its name, the old one goes.
    const fs::path old = dir / fmt::format(".figures.old-{}", static_cast<long>(::getpid()));
    const bool had_old = fs::exists(final_dir, ec);
    if (had_old && ::rename(final_dir.c_str(), old.c_str()) != 0)
      throw InputError(fmt::format("cannot replace '{}': {}", final_dir.string(), std::strerror(errno)));
    if (::rename(temp.c_str(), final_dir.c_str()) != 0) {
      const int error = errno;
      if (had_old) ::rename(old.c_str(), final_dir.c_str());
      throw InputError(fmt::format("cannot write '{}': {}", final_dir.string(), std::strerror(error)));
    }
    if (had_old) remove_quietly(old);
    sync_path(dir, O_RDONLY | O_DIRECTORY);
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
  return outcome;
}

PlotOutcome read_figure_index(const fs::path& dir) {
  PlotOutcome outcome;
  const fs::path path = dir / "figures" / "index.json";
  if (!fs::exists(path)) return outcome;
  std::ifstream in(path);
  try {
    const auto index = nlohmann::json::parse(in);
    outcome.rendered = index.at("rendered").get<bool>();
    outcome.notes = index.at("notes").get<std::vector<std::string>>();
    for (const auto& f : index.at("figures"))
      outcome.figures.push_back({f.at("name").get<std::string>(), f.at("section").get<std::string>(),
                                 f.at("title").get<std::string>()});
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("'{}' is corrupt ({}); run `causalsweep plot {}` again", path.string(), e.what(),
                                 dir.string()));
  }
  return outcome;
}

}  // namespace causalsweep::plot
