// causalsweep command line: registers the subcommands (cli_*.cpp) and maps errors to exit codes:
// 0 success, 2 bad input (with one message naming what and where), 1 internal error.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "causalsweep/build_info.hpp"
#include "causalsweep/config.hpp"
#include "cli.hpp"

namespace causalsweep::cli {

int& exit_code() {
  static int code = 0;
  return code;
}

static std::string command;
const std::string& command_line() { return command; }

}  // namespace causalsweep::cli

int main(int argc, char** argv) {
  namespace cs = causalsweep;
  for (int i = 0; i < argc; ++i) cs::cli::command += (i ? " " : "") + std::string(argv[i]);
  CLI::App app{"causalsweep: batch experiments for causal connectivity inference in simulated neural networks"};
  app.set_version_flag("--version", fmt::format("causalsweep {} (commit {}, {}, CUDA build: {})", cs::build_info::version,
                                                cs::build_info::git_commit, cs::build_info::compiler, cs::build_info::cuda));
  app.require_subcommand(1);
  cs::cli::add_run_commands(app);
  cs::cli::add_estimate_commands(app);
  cs::cli::add_plot_commands(app);
  cs::cli::add_cluster_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const cs::InputError& e) {
    fmt::print(stderr, "causalsweep: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "causalsweep: internal error: {}\n", e.what());
    return 1;
  }
  return cs::cli::exit_code();
}
