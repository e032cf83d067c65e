// `causalsweep plot DIR` (figures and report) and `causalsweep report DIR` (the report alone).
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "cli.hpp"
#include "plot.hpp"
#include "report.hpp"
#include "summary.hpp"

namespace cs = causalsweep;

namespace {

std::string plot_dir, report_dir;  // filled by CLI11 while parsing

int plot_command(const std::filesystem::path& dir) {
  const cs::plot::PlotOutcome outcome = cs::plot::plot_run_directory(dir);
  const auto report = cs::report::write_report(dir);
  fmt::print("{}\n", cs::summary_table(cs::read_csv((dir / "curves.csv").string())));
  for (const auto& note : outcome.notes) fmt::print(stderr, "causalsweep plot: note: {}\n", note);
  if (!outcome.rendered) {
    fmt::print(stderr,
               "causalsweep plot: error: gnuplot not found; wrote the data and gnuplot scripts of {} figures to {}/ "
               "and a report without figures to {}. Install gnuplot (Debian: apt-get install gnuplot-nox) and run "
               "`causalsweep plot {}` again.\n",
               outcome.figures.size(), (dir / "figures").string(), report.string(), dir.string());
    return 1;
  }
  fmt::print("{} figures (PNG, SVG, data and gnuplot scripts) in {}/\nreport: {}\n", outcome.figures.size(),
             (dir / "figures").string(), report.string());
  return 0;
}

}  // namespace

namespace causalsweep::cli {

void add_plot_commands(CLI::App& app) {
  auto* plot = app.add_subcommand(
      "plot", "Draw a run directory's figures into DIR/figures/ (gnuplot: PNG, SVG, data, scripts) and write DIR/report.html");
  plot->add_option("dir", plot_dir, "Run directory written by `causalsweep run`")->required();
  plot->callback([] { exit_code() = plot_command(plot_dir); });

  auto* report = app.add_subcommand(
      "report", "Write DIR/report.html alone (self-contained, offline), with the figures `plot` drew earlier");
  report->add_option("dir", report_dir, "Run directory written by `causalsweep run`")->required();
  report->callback([] {
    const auto path = cs::report::write_report(report_dir);
    fmt::print("report: {}\n", path.string());
    exit_code() = 0;
  });
}

}  // namespace causalsweep::cli
