// `causalsweep plot` and `causalsweep report` as a user runs them: every figure type drawn from a
// small real run (plus hand-written roc.csv, matrices/ and a first-stage-F run directory from
// tests/plot/), checked as images (PNG signature, size, more than one colour; SVG well-formed with
// plotted paths), their data files against curves.csv and runs.csv, the report opened in headless
// Chromium, bad input refused with exit 2. The summary table is tested as a function.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "causalsweep/config.hpp"
#include "plot.hpp"
#include "report.hpp"
#include "summary.hpp"

namespace fs = std::filesystem;
namespace cs = causalsweep;

namespace {

struct CliResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

fs::path scratch_dir() {
  std::string pattern = (fs::temp_directory_path() / "causalsweep-plot-XXXXXX").string();
  return mkdtemp(pattern.data());
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CliResult run_shell(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(log)};
}

CliResult run_cli(const std::string& args, const fs::path& dir, const std::string& env = "") {
  return run_shell(env + " " + std::string(CAUSALSWEEP_BINARY) + " " + args, dir / "cli.log");
}

bool on_path(const std::string& program) { return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0; }

std::string chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
    if (on_path(name)) return name;
  return "";
}

const fs::path fixtures = fs::path(CAUSALSWEEP_SOURCE_DIR) / "tests" / "plot";

// A small real sweep: a geometric axis (timesteps, log x), eta and the observed ratio swept, so
// every figure kind and the small-multiple panels appear; then the hand-written optional inputs.
const char* small_sweep = R"(name = "plot-test"
[model]
n_neurons = 8
timesteps = [300, 600, 1200]
eta = [0.5, 2.0]
observed_ratio = [1.0, 0.5]
[seeds]
count = 3
[estimators]
use = ["correlation", "lasso", "iv"]
)";

class PlotRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(scratch_dir());
    std::ofstream(*dir_ / "sweep.toml") << small_sweep;
    const auto run = run_cli("run " + (*dir_ / "sweep.toml").string() + " -q -o " + (*dir_ / "run").string(), *dir_);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    fs::copy_file(fixtures / "roc.csv", *dir_ / "run" / "roc.csv", fs::copy_options::overwrite_existing);
    fs::remove_all(*dir_ / "run" / "matrices");
    fs::copy(fixtures / "matrices", *dir_ / "run" / "matrices", fs::copy_options::recursive);
    if (cs::plot::find_gnuplot().empty()) return;
    plot_ = new CliResult(run_cli("plot " + (*dir_ / "run").string(), *dir_));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete plot_;
  }
  void SetUp() override {
    if (cs::plot::find_gnuplot().empty())
      GTEST_SKIP() << "gnuplot not found: install it (Debian: gnuplot-nox; scripts/install-deps.sh does)";
    ASSERT_NE(plot_, nullptr);
    ASSERT_EQ(plot_->exit_code, 0) << plot_->output;
  }
  static fs::path run_dir() { return *dir_ / "run"; }
  static fs::path figures() { return *dir_ / "run" / "figures"; }

  static fs::path* dir_;
  static CliResult* plot_;
};
fs::path* PlotRun::dir_ = nullptr;
CliResult* PlotRun::plot_ = nullptr;

// Checks image files with Python's standard library only (zlib, xml): a PNG's signature, chunk
// CRCs, IHDR size and the length of its decompressed scanlines, and, for files named with a leading
// '+', the number of distinct pixel values after undoing the scanline filters (slow in Python: one
// figure of each kind); an SVG's well-formedness, size and number of drawn paths. One JSON object
// per file.
const char* image_checker = R"PY(
import json, struct, sys, zlib
import xml.etree.ElementTree as ET

def png(path, decode):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        return {'ok': False, 'why': 'no PNG signature'}
    pos, idat, ihdr = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack('>I', data[pos + 8 + length:pos + 12 + length])[0]:
            return {'ok': False, 'why': 'bad CRC in ' + kind.decode()}
        if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
        if kind == b'IDAT': idat += body
        pos += 12 + length
    w, h, depth, colour = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    bpp = max(1, channels * depth // 8)
    raw = zlib.decompress(idat)
    stride = (w * channels * depth + 7) // 8
    if len(raw) != h * (stride + 1):
        return {'ok': False, 'why': 'scanlines of %d bytes, expected %d' % (len(raw), h * (stride + 1))}
    if not decode:
        return {'ok': True, 'width': w, 'height': h}
    prev, colours, off = bytearray(stride), set(), 0
    for y in range(h):
        f = raw[off]; line = bytearray(raw[off + 1:off + 1 + stride]); off += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            for x in range(0, stride, bpp): colours.add(bytes(line[x:x + bpp]))
        prev = line
    return {'ok': True, 'width': w, 'height': h, 'colours': len(colours)}

def svg(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return {'ok': False, 'why': str(e)}
    paths = [e for e in root.iter() if e.tag.endswith('path') and len(e.get('d', '')) > 10]
    return {'ok': root.tag.endswith('svg'), 'width': root.get('width'), 'height': root.get('height'), 'paths': len(paths)}

for arg in sys.argv[1:]:
    path = arg.lstrip('+')
    result = png(path, arg.startswith('+')) if path.endswith('.png') else svg(path)
    result['file'] = path
    print(json.dumps(result))
)PY";

// `decode`: the PNGs whose colours are counted.
std::map<std::string, nlohmann::json> check_images(const std::vector<fs::path>& files, const fs::path& dir,
                                                   const std::set<fs::path>& decode = {}) {
  std::ofstream(dir / "check_images.py") << image_checker;
  std::string command = "python3 " + (dir / "check_images.py").string();
  for (const auto& f : files) command += " " + std::string(decode.count(f) ? "+" : "") + f.string();
  const auto result = run_shell(command, dir / "check_images.log");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::map<std::string, nlohmann::json> out;
  std::stringstream lines(result.output);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') {
      const auto j = nlohmann::json::parse(line);
      out[fs::path(j["file"].get<std::string>()).filename().string()] = j;
    }
  return out;
}

// A .dat file's blocks: the "# block N: estimator=E axis=value ..." line and its rows of numbers.
struct Block {
  std::map<std::string, std::string> keys;
  std::vector<std::vector<double>> rows;
};
std::vector<Block> read_blocks(const fs::path& p) {
  std::vector<Block> blocks;
  std::stringstream in(read(p));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# block ", 0) == 0) {
      blocks.emplace_back();
      std::stringstream fields(line.substr(line.find(':') + 1));
      for (std::string kv; fields >> kv;) blocks.back().keys[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    } else if (!line.empty() && line[0] != '#' && !blocks.empty()) {
      std::stringstream fields(line);
      std::vector<double> row;
      for (std::string f; fields >> f;) row.push_back(std::strtod(f.c_str(), nullptr));
      blocks.back().rows.push_back(row);
    }
  }
  return blocks;
}

double as_number(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

}  // namespace

TEST_F(PlotRun, DrawsEveryFigureTypeAsValidImages) {
  const auto index = nlohmann::json::parse(read(figures() / "index.json"));
  ASSERT_TRUE(index["rendered"].get<bool>());
  std::set<std::string> names;
  for (const auto& f : index["figures"]) names.insert(f["name"].get<std::string>());
  // Scores come from the data (whatever scores the engine writes), each against every swept axis.
  const cs::CsvTable runs = cs::read_csv((run_dir() / "runs.csv").string());
  std::set<std::string> scores;
  for (const auto& row : runs.rows) scores.insert(row[static_cast<size_t>(runs.require("score"))]);
  ASSERT_TRUE(scores.count("corr_with_truth") && scores.count("auc"));
  for (const std::string score : {"corr_with_truth", "auc"}) {
    for (const std::string figure : {"_vs_observed_ratio", "_vs_eta", "_vs_observed_ratio_dots", "_vs_eta_dots",
                                     "_vs_timesteps_dots"})
      EXPECT_TRUE(names.count(score + figure)) << score + figure;
  }
  for (const auto& score : scores) {
    bool finite = false;
    for (size_t r = 0; r < runs.rows.size(); ++r)
      finite = finite || (runs.rows[r][static_cast<size_t>(runs.require("score"))] == score &&
                          std::isfinite(runs.number(r, runs.require("value"))));
    if (finite) EXPECT_TRUE(names.count(score + "_vs_eta_dots")) << score;
  }
  for (const std::string figure : {"roc_net0_k8", "roc_net1_k4", "matrices_net0_k4"}) EXPECT_TRUE(names.count(figure)) << figure;

  std::vector<fs::path> files;
  const std::set<fs::path> decode{figures() / "corr_with_truth_vs_eta.png", figures() / "auc_vs_timesteps_dots.png",
                                  figures() / "roc_net0_k8.png", figures() / "matrices_net0_k4.png"};
  for (const auto& name : names) {
    files.push_back(figures() / (name + ".png"));
    files.push_back(figures() / (name + ".svg"));
    EXPECT_TRUE(fs::exists(figures() / (name + ".gp"))) << name;
    EXPECT_TRUE(fs::exists(figures() / (name + ".dat"))) << name;
  }
  const auto checked = check_images(files, *dir_, decode);
  ASSERT_EQ(checked.size(), files.size());
  for (const auto& [file, j] : checked) {
    ASSERT_TRUE(j["ok"].get<bool>()) << file << ": " << j.dump();
    if (file.ends_with(".png")) {
      EXPECT_GE(j["width"].get<int>(), 600) << file;
      EXPECT_GE(j["height"].get<int>(), 400) << file;
      if (decode.count(figures() / file)) EXPECT_GE(j["colours"].get<int>(), 8) << file << ": (nearly) one colour";
      EXPECT_GT(fs::file_size(figures() / file), 10000u) << file;
    } else {
      EXPECT_GE(j["paths"].get<int>(), 5) << file << ": no plotted paths";
    }
  }
  EXPECT_FALSE(fs::exists(figures() / "gnuplot.log")) << read(figures() / "gnuplot.log");
  for (const auto& entry : fs::directory_iterator(run_dir()))
    EXPECT_NE(entry.path().filename().string().rfind(".figures", 0), 0u) << "left over: " << entry.path();
}

TEST_F(PlotRun, AxesFollowTheData) {
  // Tutorial 4's observed-ratio axis runs from high to low; the geometric timesteps axis is logarithmic
  // with tics at the grid values; eta (two values) is linear.
  const std::string ratio = read(figures() / "corr_with_truth_vs_observed_ratio.gp");
  EXPECT_NE(ratio.find("set xrange [1:0.5]"), std::string::npos) << ratio;
  EXPECT_NE(ratio.find("set xlabel \"observed ratio k/n\""), std::string::npos);
  EXPECT_NE(ratio.find("set ylabel \"correlation with true A\""), std::string::npos);
  EXPECT_NE(ratio.find("filledcurves"), std::string::npos);
  const std::string steps = read(figures() / "corr_with_truth_vs_timesteps_dots.gp");
  EXPECT_NE(steps.find("set logscale x"), std::string::npos);
  EXPECT_NE(steps.find("\"600\" 600"), std::string::npos);
  const std::string eta = read(figures() / "auc_vs_eta.gp");
  EXPECT_EQ(eta.find("set logscale x"), std::string::npos);
  EXPECT_NE(eta.find("set xlabel \"instrument strength eta\""), std::string::npos);
  // Other axes vary: one panel per combination (timesteps x ratio = 6 panels and the legend cell).
  EXPECT_NE(eta.find("set multiplot layout 3,3"), std::string::npos) << eta;
}

TEST_F(PlotRun, DataFilesHoldThePlottedCurveNumbers) {
  const cs::CsvTable curves = cs::read_csv((run_dir() / "curves.csv").string());
  for (const std::string name : {"corr_with_truth_vs_observed_ratio", "auc_vs_eta", "corr_with_truth_vs_timesteps_dots"}) {
    const auto blocks = read_blocks(figures() / (name + ".dat"));
    const std::string score = name.substr(0, name.find("_vs_"));
    std::string axis = name.substr(name.find("_vs_") + 4);
    if (axis.ends_with("_dots")) axis.resize(axis.size() - 5);
    size_t compared = 0, expected = 0;
    for (size_t r = 0; r < curves.rows.size(); ++r)
      if (curves.rows[r][static_cast<size_t>(curves.require("score"))] == score &&
          curves.number(r, curves.require("count")) > 0 && std::isfinite(curves.number(r, curves.require("mean"))))
        ++expected;
    for (const auto& block : blocks)
      for (const auto& row : block.rows) {
        ASSERT_GE(row.size(), 3u);
        bool found = false;
        for (size_t r = 0; r < curves.rows.size() && !found; ++r) {
          const auto& c = curves.rows[r];
          if (c[static_cast<size_t>(curves.require("score"))] != score ||
              c[static_cast<size_t>(curves.require("estimator"))] != block.keys.at("estimator") ||
              as_number(c[static_cast<size_t>(curves.require(axis))]) != row[0])
            continue;
          bool same_panel = true;
          for (const auto& [key, value] : block.keys)
            if (key != "estimator" && as_number(c[static_cast<size_t>(curves.require(key))]) != as_number(value))
              same_panel = false;
          if (!same_panel) continue;
          found = true;
          EXPECT_EQ(row[1], curves.number(r, curves.require("mean"))) << name;
          EXPECT_EQ(row[2], curves.number(r, curves.require("std"))) << name;
        }
        EXPECT_TRUE(found) << name << ": a plotted point that is not in curves.csv";
        ++compared;
      }
    EXPECT_EQ(compared, expected) << name << ": every curve point of the score is plotted once";
  }
  // The dots: one per seed and finite value in runs.csv.
  const cs::CsvTable runs = cs::read_csv((run_dir() / "runs.csv").string());
  size_t finite = 0, dots = 0;
  for (size_t r = 0; r < runs.rows.size(); ++r)
    if (runs.rows[r][static_cast<size_t>(runs.require("score"))] == "corr_with_truth" &&
        std::isfinite(runs.number(r, runs.require("value"))))
      ++finite;
  for (const auto& block : read_blocks(figures() / "corr_with_truth_vs_eta_dots_seeds.dat")) dots += block.rows.size();
  EXPECT_EQ(dots, finite);
  EXPECT_GT(dots, 0u);
}

TEST_F(PlotRun, RocAndMatrixFiguresFromHandWrittenFiles) {
  // tests/plot/roc.csv: iv's points (0,0) (0,0.5) (0.5,1) (1,1) enclose 0.875, correlation's 0.5625.
  const std::string roc = read(figures() / "roc_net0_k8.gp");
  EXPECT_NE(roc.find("iv (AUC 0.875)"), std::string::npos) << roc;
  EXPECT_NE(roc.find("correlation (AUC 0.562)"), std::string::npos) << roc;
  EXPECT_NE(read(figures() / "roc_net1_k4.gp").find("iv (AUC 1.000)"), std::string::npos);
  const auto roc_blocks = read(figures() / "roc_net0_k8.dat");
  EXPECT_NE(roc_blocks.find("0.5 1 0.5\n"), std::string::npos) << roc_blocks;
  // tests/plot/matrices: iv's estimate is twice the truth (r = 1); lasso's has r = 0.8428 (numpy).
  const std::string m = read(figures() / "matrices_net0_k4.gp");
  EXPECT_NE(m.find("iv: r = 1.000"), std::string::npos) << m;
  EXPECT_NE(m.find("lasso: r = 0.843"), std::string::npos) << m;
  EXPECT_NE(m.find("matrix with image"), std::string::npos);
  EXPECT_NE(read(figures() / "matrices_net0_k4.dat").find("0.6 0 0 0.6\n"), std::string::npos);
}

TEST_F(PlotRun, ReportLoadsInHeadlessChromiumWithEveryImage) {
  const std::string browser = chromium();
  if (browser.empty()) GTEST_SKIP() << "chromium not found: install it (Debian: chromium; scripts/install-deps.sh does)";
  const std::string html = read(run_dir() / "report.html");
  // Self-contained: no external resources, no scripts of its own.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  for (const std::string text : {"Provenance", "0.1.0", "GNU", "plot-test", "corr_with_truth, mean +- std", "curves.csv",
                                 "timesteps = [300, 600, 1200]"})
    EXPECT_NE(html.find(text), std::string::npos) << text;
  const auto index = nlohmann::json::parse(read(figures() / "index.json"));

  // A test copy records load errors and each image's natural width into the DOM, which Chromium dumps.
  const std::string probe = R"(<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + (e.message || (e.target && e.target.tagName))); }, true);
var __ce = console.error; console.error = function () { window.__errors.push('console: ' + Array.from(arguments).join(' ')); __ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.alt; });
  var out = document.createElement('pre');
  out.textContent = 'PROBE' + JSON.stringify({images: imgs.length, broken: broken, errors: window.__errors});
  document.body.appendChild(out);
});
</script>
)";
  const auto open = [&](const std::string& page, const std::string& name) {
    const fs::path copy = *dir_ / name;
    std::string text = page;
    text.insert(text.find("<head>") + 6, "\n" + probe);
    std::ofstream(copy) << text;
    const auto result = run_shell("timeout 120 " + browser +
                                      " --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 "
                                      "--virtual-time-budget=10000 --dump-dom file://" + copy.string(),
                                  *dir_ / (name + ".log"));
    EXPECT_EQ(result.exit_code, 0) << result.output.substr(0, 4000);
    EXPECT_EQ(result.output.find(":CONSOLE("), std::string::npos) << "console message: " << result.output.substr(0, 4000);
    const size_t at = result.output.find("PROBE{");
    EXPECT_NE(at, std::string::npos) << result.output.substr(0, 4000);
    if (at == std::string::npos) return nlohmann::json{};
    return nlohmann::json::parse(result.output.substr(at + 5, result.output.find("</pre>", at) - at - 5));
  };
  const auto loaded = open(html, "report-test.html");
  ASSERT_FALSE(loaded.is_null());
  EXPECT_EQ(loaded["images"].get<size_t>(), index["figures"].size());
  EXPECT_TRUE(loaded["broken"].empty()) << loaded.dump();
  EXPECT_TRUE(loaded["errors"].empty()) << loaded.dump();

  // The probe sees a broken image: the check above can fail.
  std::string broken = html;
  broken.insert(broken.find("</body>"), "<img src=\"data:image/png;base64,AAAA\" alt=\"deliberately broken\">");
  const auto bad = open(broken, "report-broken.html");
  ASSERT_FALSE(bad.is_null());
  EXPECT_EQ(bad["broken"].size(), 1u) << bad.dump();
}

TEST_F(PlotRun, PlotAgainReplacesFiguresAndFailureKeepsThem) {
  const fs::path copy = *dir_ / "again";
  fs::copy(run_dir(), copy, fs::copy_options::recursive);
  fs::remove(copy / "figures" / "style.gp");
  std::ofstream(copy / "figures" / "stale.txt") << "from before";
  auto result = run_cli("plot " + copy.string(), *dir_);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(fs::exists(copy / "figures" / "style.gp"));
  EXPECT_FALSE(fs::exists(copy / "figures" / "stale.txt"));
  // `report` alone rewrites the page from the figures there, with every one of them embedded.
  fs::remove(copy / "report.html");
  result = run_cli("report " + copy.string(), *dir_);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string page = read(copy / "report.html");
  size_t images = 0;
  for (size_t at = page.find("<img src=\"data:image/"); at != std::string::npos; at = page.find("<img src=\"data:image/", at + 1))
    ++images;
  EXPECT_EQ(images, nlohmann::json::parse(read(copy / "figures" / "index.json"))["figures"].size());
  // A corrupt matrix file: exit 2 naming it and its line; the figures from before stay whole.
  std::ofstream(copy / "matrices" / "net0_k4_lasso.csv") << "0.1,0.2,0,0\n0.3,oops,0.1,0.2\n";
  result = run_cli("plot " + copy.string(), *dir_);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("net0_k4_lasso.csv' line 2"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("oops"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(copy / "figures" / "matrices_net0_k4.png"));
  for (const auto& entry : fs::directory_iterator(copy))
    EXPECT_NE(entry.path().filename().string().rfind(".figures", 0), 0u) << "left over: " << entry.path();
}

TEST(Plot, FirstStageFAgainstGeometricEtaFromAHandWrittenRun) {
  if (cs::plot::find_gnuplot().empty()) GTEST_SKIP() << "gnuplot not found: install it (Debian: gnuplot-nox)";
  const fs::path dir = scratch_dir();
  fs::copy(fixtures / "handmade", dir / "run", fs::copy_options::recursive);
  const auto result = run_cli("plot " + (dir / "run").string(), dir);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const fs::path figures = dir / "run" / "figures";
  // The made-up score "precision" is drawn too: scores come from the data.
  for (const std::string name : {"first_stage_f_vs_eta", "first_stage_f_vs_eta_dots", "precision_vs_eta", "corr_with_truth_vs_eta"})
    EXPECT_TRUE(fs::exists(figures / (name + ".png"))) << name;
  const std::string f = read(figures / "first_stage_f_vs_eta.gp");
  EXPECT_NE(f.find("set logscale x"), std::string::npos) << "eta 0.25 .. 4 doubles: a log axis";
  EXPECT_NE(f.find("set logscale y"), std::string::npos);
  EXPECT_NE(f.find("F = 10 (weak instrument)"), std::string::npos);
  EXPECT_EQ(f.find("lasso"), std::string::npos) << "lasso has no first-stage F: not drawn";
  const auto blocks = read_blocks(figures / "first_stage_f_vs_eta.dat");
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_EQ(blocks[0].rows.size(), 5u);
  EXPECT_EQ(blocks[0].rows[2][0], 1.0);
  EXPECT_EQ(blocks[0].rows[2][1], 17.0);  // (15 + 19) / 2
  EXPECT_EQ(blocks[0].rows[2][2], 2.0);   // population std
  const auto checked = check_images({figures / "first_stage_f_vs_eta.png", figures / "first_stage_f_vs_eta.svg"}, dir,
                                    {figures / "first_stage_f_vs_eta.png"});
  ASSERT_EQ(checked.size(), 2u);
  for (const auto& [file, j] : checked) EXPECT_TRUE(j["ok"].get<bool>()) << file;
  EXPECT_GE(checked.at("first_stage_f_vs_eta.png")["colours"].get<int>(), 8);
  fs::remove_all(dir);
}

TEST(Plot, BadRunDirectoriesExitTwoNamingWhatAndWhere) {
  const fs::path dir = scratch_dir();
  auto result = run_cli("plot " + (dir / "nowhere").string(), dir);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("nowhere' does not exist"), std::string::npos) << result.output;

  fs::copy(fixtures / "handmade", dir / "run", fs::copy_options::recursive);
  fs::remove(dir / "run" / "curves.csv");
  result = run_cli("report " + (dir / "run").string(), dir);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("'curves.csv' is missing"), std::string::npos) << result.output;

  fs::copy_file(fixtures / "handmade" / "curves.csv", dir / "run" / "curves.csv");
  std::string runs = read(dir / "run" / "runs.csv");
  runs.insert(runs.find('\n', runs.find('\n') + 1) + 1, "0,0,10,1000\n");  // a truncated line 3
  std::ofstream(dir / "run" / "runs.csv") << runs;
  result = run_cli("plot " + (dir / "run").string(), dir);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("runs.csv' line 3: 4 fields where the header has 14"), std::string::npos) << result.output;

  fs::copy_file(fixtures / "handmade" / "runs.csv", dir / "run" / "runs.csv", fs::copy_options::overwrite_existing);
  std::ofstream(dir / "run" / "manifest.json") << "{\"version\": ";
  result = run_cli("plot " + (dir / "run").string(), dir);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("manifest.json': not valid JSON"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "figures"));
  fs::remove_all(dir);
}

TEST(Plot, WithoutGnuplotWritesDataScriptsAndReportThenExitsOne) {
  const fs::path dir = scratch_dir();
  fs::copy(fixtures / "handmade", dir / "run", fs::copy_options::recursive);
  const auto result = run_cli("plot " + (dir / "run").string(), dir, "CAUSALSWEEP_GNUPLOT=/nonexistent/gnuplot");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("gnuplot not found"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("gnuplot-nox"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(dir / "run" / "figures" / "first_stage_f_vs_eta.gp"));
  EXPECT_TRUE(fs::exists(dir / "run" / "figures" / "first_stage_f_vs_eta.dat"));
  EXPECT_FALSE(fs::exists(dir / "run" / "figures" / "first_stage_f_vs_eta.png"));
  EXPECT_NE(read(dir / "run" / "report.html").find("not rendered"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Summary, AlignedMeanAndStdPerEstimatorWithinOneHundredColumns) {
  std::string csv = "n_neurons,eta,observed_ratio,estimator,method,score,count,nan_count,mean,std\n";
  const std::vector<std::string> estimators{"correlation", "lasso", "ols", "iv", "lasso_with_intercept",
                                            "granger_conditional", "perturbation", "iv_strong"};
  for (const char* eta : {"0.5", "2.0"})
    for (const char* ratio : {"1.0", "0.2"})
      for (const auto& e : estimators) {
        csv += fmt::format("40,{},{},{},m,corr_with_truth,50,0,0.7517986519672359,0.013676981390442941\n", eta, ratio, e);
        csv += fmt::format("40,{},{},{},m,first_stage_f,48,2,1234.5678,88.12\n", eta, ratio, e);
      }
  const std::string table = cs::summary_table(cs::parse_csv(csv, "curves.csv"));
  std::stringstream lines(table);
  size_t count = 0;
  for (std::string line; std::getline(lines, line); ++count) EXPECT_LE(line.size(), 100u) << line;
  EXPECT_GT(count, 10u);
  EXPECT_NE(table.find("corr_with_truth, mean +- std over seeds (n = 40):"), std::string::npos) << table;
  EXPECT_NE(table.find("0.752 +- 0.014"), std::string::npos);
  EXPECT_NE(table.find("1235 +- 88*"), std::string::npos) << table;  // magnitude-aware decimals, NaN mark
  EXPECT_NE(table.find("* some seeds gave NaN"), std::string::npos);
  // Eight estimators do not fit 100 columns: they wrap into blocks, each repeating the axis columns.
  size_t headers = 0;
  for (size_t at = table.find("eta  ratio"); at != std::string::npos; at = table.find("eta  ratio", at + 1)) ++headers;
  EXPECT_GE(headers, 4u) << table;
  // Right-aligned: every row of a block ends at the same column as its header.
  std::stringstream again(table);
  std::vector<std::string> block;
  size_t cells = 0;
  for (std::string line; std::getline(again, line);) {
    if (line.find("eta  ratio") != std::string::npos) {
      block = {line};
    } else if (line.find("mean +- std over seeds") != std::string::npos) {
      block.clear();
    } else if (!block.empty() && line.find(" +- ") != std::string::npos) {
      EXPECT_EQ(line.size(), block[0].size()) << line << "\n" << block[0];
      for (size_t at = line.find(" +- "); at != std::string::npos; at = line.find(" +- ", at + 1)) ++cells;
    }
  }
  EXPECT_EQ(cells, 2u * 4u * 8u) << "every score x grid point x estimator once";
  // Only the scores asked for, in that order.
  const std::string only = cs::summary_table(cs::parse_csv(csv, "curves.csv"), {{"first_stage_f"}, 100});
  EXPECT_EQ(only.find("corr_with_truth"), std::string::npos);
  EXPECT_EQ(only.rfind("first_stage_f, mean", 0), 0u) << only;
}

TEST(Summary, CsvErrorsNameFileAndLine) {
  EXPECT_THROW(cs::parse_csv("", "x.csv"), cs::InputError);
  try {
    cs::parse_csv("a,b\n1,2\n3\n", "curves.csv");
    FAIL();
  } catch (const cs::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'curves.csv' line 3: 1 fields where the header has 2"), std::string::npos)
        << e.what();
  }
  const auto quoted = cs::parse_csv("a,b\n\"x, \"\"y\"\"\",2\n", "q.csv");
  ASSERT_EQ(quoted.rows.size(), 1u);
  EXPECT_EQ(quoted.rows[0][0], "x, \"y\"");
  EXPECT_THROW(quoted.require("c"), cs::InputError);
  EXPECT_THROW(quoted.number(0, 0), cs::InputError);
  EXPECT_EQ(quoted.number(0, 1), 2.0);
}

TEST(Report, Base64AndEscaping) {
  EXPECT_EQ(cs::report::base64(""), "");
  EXPECT_EQ(cs::report::base64("f"), "Zg==");
  EXPECT_EQ(cs::report::base64("fo"), "Zm8=");
  EXPECT_EQ(cs::report::base64("foo"), "Zm9v");
  EXPECT_EQ(cs::report::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(cs::report::base64(std::string("\xff\x00\x80", 3)), "/wCA");
  EXPECT_EQ(cs::report::html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}
