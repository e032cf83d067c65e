#pragma once
// The summary table printed after a run and by `causalsweep plot`: for each score, one row per grid
// point (the axes that vary), one column per estimator, "mean +- std" over the seeds, aligned and
// at most `width` columns wide (estimators wrap into further blocks when they do not fit).
//
// It reads curves.csv as text, so it does not depend on the engine's in-memory result types: the run
// command can call it on the curves.csv it is about to write, `plot` on the one it reads back.
#include <string>
#include <vector>

namespace causalsweep {

// A CSV file read into memory: a header and rows of fields (RFC 4180 quoting understood).
struct CsvTable {
  std::string name;  // for messages: the file's path
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> lines;  // the 1-based line of each row, for messages

  int column(const std::string& column_name) const;  // -1 when absent
  // The index of a column; InputError naming the file and the column when it is absent.
  int require(const std::string& column_name) const;
  // The field as a number (NaN, inf as written); InputError naming file, line and column otherwise.
  double number(size_t row, int column) const;
};

// InputError naming `name` and the line on ragged rows, an empty file or an unterminated quote.
CsvTable parse_csv(const std::string& text, const std::string& name);
CsvTable read_csv(const std::string& path);  // InputError when missing or unreadable

// The curves.csv columns that are statistics or identify the estimator and score; every other
// column is an axis of the sweep (n_neurons, timesteps, p_connect, eta, observed_ratio, ...).
bool is_curve_statistic_column(const std::string& column);

struct SummaryOptions {
  std::vector<std::string> scores;  // the scores to show, in this order; empty: all, as they appear
  int width = 100;                  // maximum line length
};

// The table as text, ending in a newline. InputError when a required column is missing.
std::string summary_table(const CsvTable& curves, const SummaryOptions& options = {});

}  // namespace causalsweep
