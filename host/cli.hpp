#pragma once
// The command line: each subcommand lives in its own cli_*.cpp and registers itself here.
// Subcommand callbacks run inside CLI::App::parse; they report bad input by throwing InputError
// (main prints it and exits 2) and set exit_code() otherwise.
#include <string>

#include <CLI/CLI.hpp>

namespace causalsweep::cli {

int& exit_code();                  // what main returns after a successful parse
const std::string& command_line(); // argv joined, for manifests

void add_run_commands(CLI::App& app);  // run, plan
void add_estimate_commands(CLI::App& app);  // estimate, iv (the user's own data)
void add_plot_commands(CLI::App& app); // plot, report
void add_cluster_commands(CLI::App& app);  // submit, merge (sharded sweeps)

}  // namespace causalsweep::cli
