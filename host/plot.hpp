#pragma once
// `causalsweep plot`: the figures of a run directory, drawn by gnuplot from data files and scripts
// written next to them (DIR/figures/NAME.dat, NAME.gp, style.gp), so a user can restyle and redraw
// any figure with `cd DIR/figures && gnuplot NAME.gp`.
//
// Figures (for every score in runs.csv, whatever their names):
//   SCORE_vs_observed_ratio, SCORE_vs_eta   mean with a shaded population-std band per estimator
//   SCORE_vs_AXIS_dots                      one dot per seed and a mean line, for every swept axis
//                                           (log x axis when the axis values are geometric)
//   first_stage_f: log y axis and the F = 10 weak-instrument line; drawn against eta even when eta
//                  is not swept
//   roc_netN_kK                             from roc.csv: ROC curves, AUC in the legend
//   matrices_netN_kK                        from matrices/index.csv: true and estimated connectivity
//                                           side by side, correlation in each panel's title
// When axes other than the plotted one vary, each combination of their values is a panel of the
// figure (small multiples sharing the y axis, one legend cell), at most kMaxPanels panels a figure
// and kMaxPages figures (NAME_1, NAME_2, ...) per score and axis.
#include <filesystem>
#include <string>
#include <vector>

namespace causalsweep::plot {

inline constexpr int kMaxPanels = 12;        // panels (combinations of the other axes) per figure
inline constexpr int kMaxPages = 3;          // figures per score and axis
inline constexpr int kMaxRunFigures = 12;    // ROC and matrix figures (one per network and ratio)

struct Figure {
  std::string name;     // file stem in figures/: NAME.png, NAME.svg, NAME.gp, NAME*.dat
  std::string section;  // the report's grouping: the score, "ROC curves" or "Connectivity matrices"
  std::string title;    // a one-line caption
};

struct PlotOutcome {
  std::vector<Figure> figures;
  std::vector<std::string> notes;  // what was left out and why
  bool rendered = false;           // false when no gnuplot was found: data and scripts only
};

// gnuplot to run: $CAUSALSWEEP_GNUPLOT when set (empty or a missing file: none), else `gnuplot`
// on PATH; empty when there is none.
std::string find_gnuplot();

// InputError (naming the path) unless `dir` is a run directory with runs.csv, curves.csv and
// manifest.json.
void check_run_directory(const std::filesystem::path& dir);

// Writes DIR/figures/ (data, scripts, index.json, and PNG + SVG when gnuplot is found) into a
// temporary directory and renames it into place, replacing an earlier figures/ in one step.
// InputError for a missing or corrupt run directory or optional input (roc.csv, matrices/);
// std::runtime_error when gnuplot fails.
PlotOutcome plot_run_directory(const std::filesystem::path& dir);

// The figure list and notes that plot_run_directory wrote to DIR/figures/index.json; an empty
// outcome when there is no figures/ directory. InputError when index.json is corrupt.
PlotOutcome read_figure_index(const std::filesystem::path& dir);

// Atomic file write: a temporary file in the same directory, synced, then renamed over `path`.
void write_file_replacing(const std::filesystem::path& path, const std::string& content);

}  // namespace causalsweep::plot
