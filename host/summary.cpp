#include "summary.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "causalsweep/config.hpp"  // InputError

namespace causalsweep {

int CsvTable::column(const std::string& column_name) const {
  const auto it = std::find(columns.begin(), columns.end(), column_name);
  return it == columns.end() ? -1 : static_cast<int>(it - columns.begin());
}

int CsvTable::require(const std::string& column_name) const {
  const int c = column(column_name);
  if (c < 0)
    throw InputError(fmt::format("'{}': no column '{}' in its header (columns: {})", name, column_name,
                                 fmt::join(columns, ", ")));
  return c;
}

double CsvTable::number(size_t row, int c) const {
  const std::string& field = rows[row][static_cast<size_t>(c)];
  char* end = nullptr;
  const double v = std::strtod(field.c_str(), &end);
  if (field.empty() || end != field.c_str() + field.size())
    throw InputError(fmt::format("'{}' line {}: column '{}' holds '{}', not a number", name, lines[row],
                                 columns[static_cast<size_t>(c)], field));
  return v;
}

CsvTable parse_csv(const std::string& text, const std::string& name) {
  CsvTable table;
  table.name = name;
  std::vector<std::vector<std::string>> records;
  std::vector<int> record_lines;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, field_started = false;
  int line = 1, record_line = 1;
  const auto end_record = [&] {
    record.push_back(std::move(field));
    field.clear();
    const bool blank = record.size() == 1 && record[0].empty();
    if (!blank) {
      records.push_back(std::move(record));
      record_lines.push_back(record_line);
    }
    record.clear();
    field_started = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n') {
      end_record();
      record_line = ++line;
    } else if (c != '\r') {
      field += c;
      field_started = true;
    }
  }
  if (quoted) throw InputError(fmt::format("'{}' line {}: unterminated quoted field", name, record_line));
  if (!field.empty() || !record.empty()) end_record();
  if (records.empty()) throw InputError(fmt::format("'{}' is empty: expected a CSV header line", name));
  table.columns = std::move(records[0]);
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != table.columns.size())
      throw InputError(fmt::format("'{}' line {}: {} fields where the header has {} (truncated or corrupt file?)", name,
                                   record_lines[r], records[r].size(), table.columns.size()));
    table.rows.push_back(std::move(records[r]));
    table.lines.push_back(record_lines[r]);
  }
  return table;
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read '{}': no such file or not readable", path));
  std::stringstream text;
  text << in.rdbuf();
  return parse_csv(text.str(), path);
}

bool is_curve_statistic_column(const std::string& column) {
  static const std::set<std::string> statistics{"estimator", "method", "score",    "count",     "nan_count",
                                                "mean",      "std",    "sem",      "ci95_low",  "ci95_high"};
  return statistics.count(column) > 0;
}

namespace {

std::string short_axis_name(const std::string& axis) {
  static const std::map<std::string, std::string> names{
      {"n_neurons", "n"}, {"timesteps", "T"}, {"p_connect", "p"}, {"eta", "eta"}, {"observed_ratio", "ratio"}};
  const auto it = names.find(axis);
  return it == names.end() ? axis : it->second;
}

std::string axis_value(const std::string& field) {
  char* end = nullptr;
  const double v = std::strtod(field.c_str(), &end);
  return !field.empty() && end == field.c_str() + field.size() ? fmt::format("{:g}", v) : field;
}

struct Cell {
  double mean, std;
  long count, nan_count;
};

}  // namespace

std::string summary_table(const CsvTable& curves, const SummaryOptions& options) {
  const int estimator_col = curves.require("estimator"), score_col = curves.require("score"),
            mean_col = curves.require("mean"), std_col = curves.require("std"), count_col = curves.require("count");
  const int nan_col = curves.column("nan_count");
  std::vector<int> axis_cols;
  for (size_t c = 0; c < curves.columns.size(); ++c)
    if (!is_curve_statistic_column(curves.columns[c])) axis_cols.push_back(static_cast<int>(c));

  // Axes that vary are the row labels; the others are constant and go into the heading.
  std::vector<int> varying;
  std::vector<std::string> constant;
  for (int c : axis_cols) {
    std::set<std::string> values;
    for (const auto& row : curves.rows) values.insert(row[static_cast<size_t>(c)]);
    if (values.size() > 1)
      varying.push_back(c);
    else if (!values.empty())
      constant.push_back(fmt::format("{} = {}", short_axis_name(curves.columns[static_cast<size_t>(c)]),
                                     axis_value(*values.begin())));
  }

  std::vector<std::string> scores = options.scores, estimators, points;
  std::map<std::string, std::vector<std::string>> point_labels;  // grid point key -> its axis values
  std::map<std::tuple<std::string, std::string, std::string>, Cell> cells;  // (score, point, estimator)
  for (size_t r = 0; r < curves.rows.size(); ++r) {
    const auto& row = curves.rows[r];
    const std::string& score = row[static_cast<size_t>(score_col)];
    const std::string& estimator = row[static_cast<size_t>(estimator_col)];
    if (options.scores.empty() && std::find(scores.begin(), scores.end(), score) == scores.end())
      scores.push_back(score);
    if (std::find(estimators.begin(), estimators.end(), estimator) == estimators.end()) estimators.push_back(estimator);
    std::string key;
    std::vector<std::string> labels;
    for (int c : varying) {
      key += row[static_cast<size_t>(c)] + '\x1f';
      labels.push_back(axis_value(row[static_cast<size_t>(c)]));
    }
    if (!point_labels.count(key)) {
      points.push_back(key);
      point_labels[key] = labels;
    }
    cells[{score, key, estimator}] = {curves.number(r, mean_col), curves.number(r, std_col),
                                      static_cast<long>(curves.number(r, count_col)),
                                      nan_col >= 0 ? static_cast<long>(curves.number(r, nan_col)) : 0};
  }

  std::string out;
  for (const std::string& score : scores) {
    // Decimals by magnitude, so 0.752 and an F statistic of 1234 both read well.
    double magnitude = 0;
    bool any = false;
    for (const auto& [key, cell] : cells)
      if (std::get<0>(key) == score && cell.count > 0 && std::isfinite(cell.mean)) {
        magnitude = std::max(magnitude, std::fabs(cell.mean));
        any = true;
      }
    if (!any && !options.scores.empty() &&
        std::none_of(cells.begin(), cells.end(), [&](const auto& c) { return std::get<0>(c.first) == score; }))
      continue;  // a requested score this sweep does not have
    const int decimals = magnitude < 10 ? 3 : magnitude < 1000 ? 1 : 0;
    bool footnote = false;
    const auto text = [&](const std::string& point, const std::string& estimator) -> std::string {
      const auto it = cells.find({score, point, estimator});
      if (it == cells.end()) return "";
      const Cell& c = it->second;
      if (c.count == 0 || !std::isfinite(c.mean)) return "nan";
      footnote = footnote || c.nan_count > 0;
      return fmt::format("{:.{}f} +- {:.{}f}{}", c.mean, decimals, c.std, decimals, c.nan_count > 0 ? "*" : "");
    };
    // Column widths: axis labels, then each estimator's widest cell or its (truncated) label.
    std::vector<size_t> axis_width;
    for (size_t a = 0; a < varying.size(); ++a) {
      size_t w = short_axis_name(curves.columns[static_cast<size_t>(varying[a])]).size();
      for (const auto& p : points) w = std::max(w, point_labels[p][a].size());
      axis_width.push_back(w);
    }
    std::vector<std::string> shown;  // estimators with at least one cell for this score
    std::vector<size_t> width;
    for (const auto& e : estimators) {
      size_t w = 0;
      bool has = false;
      for (const auto& p : points) {
        const std::string t = text(p, e);
        has = has || !t.empty();
        w = std::max(w, t.size());
      }
      if (!has) continue;
      shown.push_back(e);
      width.push_back(std::max(w, std::min<size_t>(e.size(), 24)));
    }
    size_t prefix = 0;
    for (size_t w : axis_width) prefix += w + 2;
    if (varying.empty()) prefix = 0;

    out += fmt::format("{}, mean +- std over seeds{}{}:\n", score, constant.empty() ? "" : " (",
                       constant.empty() ? "" : fmt::format("{})", fmt::join(constant, ", ")));
    // Wrap the estimator columns into blocks that fit the width, repeating the axis columns.
    for (size_t first = 0; first < shown.size();) {
      size_t last = first, line = prefix;
      while (last < shown.size() && (last == first || line + width[last] + 2 <= static_cast<size_t>(options.width)))
        line += width[last++] + 2;
      std::string header;
      for (size_t a = 0; a < varying.size(); ++a)
        header += fmt::format("{:>{}}  ", short_axis_name(curves.columns[static_cast<size_t>(varying[a])]), axis_width[a]);
      for (size_t e = first; e < last; ++e) header += fmt::format("{:>{}}  ", shown[e].substr(0, 24), width[e]);
      while (!header.empty() && header.back() == ' ') header.pop_back();
      out += header + "\n";
      for (const auto& p : points) {
        std::string row;
        for (size_t a = 0; a < varying.size(); ++a) row += fmt::format("{:>{}}  ", point_labels[p][a], axis_width[a]);
        bool has = false;
        for (size_t e = first; e < last; ++e) {
          const std::string t = text(p, shown[e]);
          has = has || !t.empty();
          row += fmt::format("{:>{}}  ", t, width[e]);
        }
        while (!row.empty() && row.back() == ' ') row.pop_back();
        if (has) out += row + "\n";
      }
      first = last;
    }
    if (footnote) out += "  * some seeds gave NaN (see the flags in runs.csv); mean and std over the others\n";
    out += "\n";
  }
  if (!out.empty()) out.pop_back();  // one blank line between scores, none at the end
  return out;
}

}  // namespace causalsweep
