#include "report.hpp"

#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "causalsweep/config.hpp"  // InputError
#include "plot.hpp"
#include "summary.hpp"

namespace causalsweep::report {
namespace fs = std::filesystem;

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += alphabet[(v >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A manifest value as text ("" when absent), whatever its JSON type.
std::string text(const nlohmann::json& j, const std::vector<std::string>& path) {
  const nlohmann::json* node = &j;
  for (const auto& key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  if (node->is_string()) return node->get<std::string>();
  if (node->is_null()) return "";
  if (node->is_number_float()) return fmt::format("{:.4g}", node->get<double>());
  return node->dump();
}

const char* kStyle = R"(
body { font-family: "DejaVu Sans", system-ui, sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em;
       color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; }
th { background: #eee; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; } nav a { margin-right: 1em; } .note { color: #8a4b00; }
)";

}  // namespace

fs::path write_report(const fs::path& dir) {
  plot::check_run_directory(dir);
  nlohmann::json manifest;
  {
    std::ifstream in(dir / "manifest.json");
    try {
      manifest = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("'{}': not valid JSON ({})", (dir / "manifest.json").string(), e.what()));
    }
  }
  const CsvTable curves = read_csv((dir / "curves.csv").string());
  const plot::PlotOutcome figures = plot::read_figure_index(dir);
  const std::string name = text(manifest, {"config", "name"}).empty() ? dir.filename().string()
                                                                      : text(manifest, {"config", "name"});

  std::string h = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>causalsweep report: {}</title>\n<style>{}</style>\n</head>\n<body>\n",
      html_escape(name), kStyle);
  h += fmt::format("<h1>causalsweep report: {}</h1>\n", html_escape(name));
  if (const std::string d = text(manifest, {"config", "description"}); !d.empty())
    h += fmt::format("<p>{}</p>\n", html_escape(d));
  h += fmt::format("<p>{} networks, {} runs, finished {} ({} s wall); run directory <code>{}</code></p>\n",
                   html_escape(text(manifest, {"grid", "networks"})), html_escape(text(manifest, {"grid", "runs"})),
                   html_escape(text(manifest, {"finished_utc"})), html_escape(text(manifest, {"seconds", "wall"})),
                   html_escape(fs::absolute(dir).lexically_normal().string()));
  h += "<nav><a href=\"#summary\">Summary</a><a href=\"#figures\">Figures</a><a href=\"#provenance\">Provenance</a>"
       "<a href=\"#configuration\">Configuration</a><a href=\"#curves\">Curve table</a></nav>\n";

  h += "<h2 id=\"summary\">Summary</h2>\n<pre>" + html_escape(summary_table(curves)) + "</pre>\n";

  h += "<h2 id=\"figures\">Figures</h2>\n";
  if (figures.figures.empty())
    h += fmt::format("<p class=\"note\">No figures: run <code>causalsweep plot {}</code> to draw them.</p>\n",
                     html_escape(dir.string()));
  for (const auto& note : figures.notes) h += fmt::format("<p class=\"note\">{}</p>\n", html_escape(note));
  std::string section;
  for (const auto& f : figures.figures) {
    if (f.section != section) {
      section = f.section;
      h += fmt::format("<h3>{}</h3>\n", html_escape(section));
    }
    // Vector SVG where it is small (line plots); PNG for heatmaps (an SVG heatmap is one element per
    // cell) and for plots with thousands of dots, so the page stays light.
    const fs::path svg_file = dir / "figures" / (f.name + ".svg");
    std::error_code ec;
    const bool svg = f.section != "Connectivity matrices" && fs::exists(svg_file) &&
                     fs::file_size(svg_file, ec) <= kMaxInlineSvgBytes && !ec;
    const fs::path file = dir / "figures" / (f.name + (svg ? ".svg" : ".png"));
    h += "<figure>\n";
    if (fs::exists(file))
      h += fmt::format("<img src=\"data:image/{};base64,{}\" alt=\"{}\">\n", svg ? "svg+xml" : "png",
                       base64(read_file(file)), html_escape(f.title));
    else
      h += "<p class=\"note\">(not rendered: no gnuplot when the figures were made)</p>\n";
    h += fmt::format("<figcaption>{} <code>figures/{}.gp</code></figcaption>\n</figure>\n", html_escape(f.title),
                     html_escape(f.name));
  }

  h += "<h2 id=\"provenance\">Provenance</h2>\n<table>\n";
  const std::vector<std::pair<std::string, std::vector<std::string>>> rows{
      {"tool version", {"version"}},
      {"git commit", {"git_commit"}},
      {"compiler", {"compiler"}},
      {"build type", {"build_type"}},
      {"CUDA build", {"cuda_build"}},
      {"backend", {"backend", "name"}},
      {"device", {"backend", "device"}},
      {"backend choice", {"backend", "choice"}},
      {"threads", {"backend", "threads"}},
      {"batch size", {"backend", "batch_size"}},
      {"host", {"host", "hostname"}},
      {"GPUs seen", {"host", "gpus"}},
      {"command", {"command"}},
      {"started (UTC)", {"started_utc"}},
      {"finished (UTC)", {"finished_utc"}},
      {"wall time (s)", {"seconds", "wall"}},
      {"networks", {"grid", "networks"}},
      {"runs", {"grid", "runs"}},
      {"result rows", {"grid", "result_rows"}},
      {"saturated logits", {"saturated_logits"}},
  };
  for (const auto& [label, path] : rows)
    if (const std::string v = text(manifest, path); !v.empty())
      h += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", html_escape(label), html_escape(v));
  if (manifest.contains("seconds") && manifest["seconds"].contains("thread_seconds_per_phase"))
    for (const auto& [phase, seconds] : manifest["seconds"]["thread_seconds_per_phase"].items())
      h += fmt::format("<tr><th>thread-seconds: {}</th><td class=\"n\">{}</td></tr>\n", html_escape(phase),
                       html_escape(seconds.is_number_float() ? fmt::format("{:.4g}", seconds.get<double>())
                                                             : seconds.dump()));
  std::string flags;
  if (manifest.contains("flag_counts") && manifest["flag_counts"].is_object())
    for (const auto& [flag, count] : manifest["flag_counts"].items())
      flags += fmt::format("{}{}: {}", flags.empty() ? "" : ", ", flag, count.dump());
  h += fmt::format("<tr><th>flag counts</th><td>{}</td></tr>\n</table>\n", html_escape(flags.empty() ? "none" : flags));

  h += "<h2 id=\"configuration\">Configuration</h2>\n";
  const std::string config_text = text(manifest, {"config_text"});
  h += "<pre>" + html_escape(config_text.empty() ? text(manifest, {"config"}) : config_text) + "</pre>\n";

  h += fmt::format("<h2 id=\"curves\">Curve table</h2>\n<details><summary>curves.csv: {} rows (mean, population std, "
                   "sem and Student-t 95% interval over seeds){}</summary>\n<table>\n<tr>",
                   curves.rows.size(),
                   curves.rows.size() > kMaxCurveRows ? fmt::format("; the first {} shown", kMaxCurveRows) : "");
  for (const auto& c : curves.columns) h += "<th>" + html_escape(c) + "</th>";
  h += "</tr>\n";
  for (size_t r = 0; r < curves.rows.size() && r < kMaxCurveRows; ++r) {
    h += "<tr>";
    for (const auto& field : curves.rows[r]) h += "<td class=\"n\">" + html_escape(field) + "</td>";
    h += "</tr>\n";
  }
  h += "</table>\n</details>\n</body>\n</html>\n";

  const fs::path path = dir / "report.html";
  plot::write_file_replacing(path, h);
  return path;
}

}  // namespace causalsweep::report
