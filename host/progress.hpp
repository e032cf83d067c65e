#pragma once
// Progress of a long run on stderr: a redrawn bar on a terminal, plain lines every few seconds
// otherwise (batch logs), nothing with --quiet.
#include <chrono>
#include <cstdint>
#include <string>

namespace causalsweep {

class Progress {
 public:
  Progress(bool quiet, std::string label);
  void start(uint64_t networks, double cost);
  void advance(uint64_t networks, double cost);
  void finish();

 private:
  void draw(bool final_line);
  bool quiet_, terminal_;
  std::string label_;
  uint64_t total_ = 0, done_ = 0;
  double total_cost_ = 0, done_cost_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace causalsweep
