#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace causalsweep {

Progress::Progress(bool quiet, std::string label)
    : quiet_(quiet), terminal_(isatty(STDERR_FILENO) != 0), label_(std::move(label)) {}

void Progress::start(uint64_t networks, double cost) {
  total_ = networks;
  total_cost_ = cost;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::advance(uint64_t networks, double cost) {
  done_ += networks;
  done_cost_ += cost;
  const auto now = std::chrono::steady_clock::now();
  // Redraw a terminal bar at most 10 times a second; log a plain line every 10 seconds.
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (terminal_ ? 0.1 : 10.0)) draw(false);
}

void Progress::finish() {
  if (total_ > 0) draw(true);
}

void Progress::draw(bool final_line) {
  last_draw_ = std::chrono::steady_clock::now();
  if (quiet_) return;
  const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  if (!final_line && elapsed < 1.0) return;  // short runs stay silent until the end
  const double fraction = total_cost_ > 0 ? done_cost_ / total_cost_ : 1.0;
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = fraction > 0 ? elapsed * (1.0 - fraction) / fraction : 0.0;
  const std::string status = fmt::format("{}/{} networks  {:.1f} net/s  elapsed {:.1f}s  ETA {:.0f}s  {}", done_,
                                         total_, rate, elapsed, eta, label_);
  if (terminal_) {
    constexpr int width = 30;
    const int filled = static_cast<int>(fraction * width + 0.5);
    fmt::print(stderr, "\r[{}{}] {:3.0f}% {}\x1b[K{}", std::string(static_cast<size_t>(filled), '#'),
               std::string(static_cast<size_t>(width - filled), ' '), 100 * fraction, status, final_line ? "\n" : "");
  } else if (!final_line || elapsed >= 1.0) {
    fmt::print(stderr, "progress: {:.0f}% {}\n", 100 * fraction, status);
  }
  std::fflush(stderr);
}

}  // namespace causalsweep
