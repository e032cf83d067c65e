#pragma once
// report.html: one self-contained page per run directory (no scripts, no external resources; the
// figures are embedded as data: URIs), with the summary table, the figures, the provenance from
// manifest.json, the configuration text and the full curve table. Written by `causalsweep plot`
// after the figures, and by `causalsweep report` alone (from the figures/ already there).
#include <cstdint>
#include <filesystem>
#include <string>

namespace causalsweep::report {

inline constexpr size_t kMaxCurveRows = 5000;  // rows of curves.csv shown in the page's full table
inline constexpr uintmax_t kMaxInlineSvgBytes = 256 * 1024;  // larger figures are embedded as PNG

// Writes DIR/report.html atomically and returns its path. InputError for a missing or corrupt run
// directory or figures/index.json.
std::filesystem::path write_report(const std::filesystem::path& dir);

std::string base64(const std::string& bytes);
std::string html_escape(const std::string& text);

}  // namespace causalsweep::report
