// CSV and .npy readers for the user's data (causalsweep estimate, iv, connectivity files).
#include "data_io.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "causalsweep/config.hpp"

namespace causalsweep {
namespace {

// The cell as the message shows it: printable ASCII, shortened, control bytes escaped.
std::string shown(std::string_view cell) {
  std::string out;
  for (const char c : cell.substr(0, std::min<size_t>(cell.size(), 40))) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", u);
  }
  if (cell.size() > 40) out += "...";
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_cells(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t begin = 0;
  while (true) {
    const size_t comma = line.find(',', begin);
    cells.push_back(trim(line.substr(begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin)));
    if (comma == std::string_view::npos) return cells;
    begin = comma + 1;
  }
}

// Finite decimal number (an optional sign, digits, point, exponent): from_chars also accepts
// "inf" and "nan", which are rejected here with their own message.
bool parse_number(std::string_view cell, double& value, std::string& problem) {
  std::string_view body = cell;
  if (!body.empty() && body.front() == '+') body.remove_prefix(1);
  if (body.empty() || body.front() == '+') {
    problem = cell.empty() ? "is empty" : "is not a number";
    return false;
  }
  const auto [end, error] = std::from_chars(body.data(), body.data() + body.size(), value);
  if (error == std::errc::result_out_of_range) {
    problem = "is out of the float64 range";
    return false;
  }
  if (error != std::errc() || end != body.data() + body.size()) {
    problem = "is not a number";
    return false;
  }
  if (!std::isfinite(value)) {
    problem = "is not finite (NaN and Inf are not allowed in data)";
    return false;
  }
  return true;
}

}  // namespace

NumericTable parse_csv(std::string_view text, std::string_view source, bool header) {
  NumericTable table;
  std::vector<double> values;
  size_t columns = 0, rows = 0, line_number = 0;
  size_t pos = 0;
  // Trailing empty lines are allowed (editors add them); an empty line before data is not.
  std::string_view rest = text;
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r' || rest.back() == ' ')) rest.remove_suffix(1);
  if (rest.empty()) throw InputError(fmt::format("{}: the file is empty: expected comma-separated numbers", source));
  while (pos <= rest.size()) {
    const size_t newline = rest.find('\n', pos);
    const std::string_view line =
        rest.substr(pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos);
    pos = newline == std::string_view::npos ? rest.size() + 1 : newline + 1;
    ++line_number;
    const auto cells = split_cells(line);
    if (header && line_number == 1) {
      for (size_t c = 0; c < cells.size(); ++c) {
        if (cells[c].empty())
          throw InputError(fmt::format("{}: row 1 (header), column {}: empty column name: expected a name per column",
                                       source, c + 1));
        if (std::find(table.header.begin(), table.header.end(), cells[c]) != table.header.end())
          throw InputError(fmt::format("{}: row 1 (header), column {}: name '{}' appears twice: expected unique names",
                                       source, c + 1, shown(cells[c])));
        table.header.emplace_back(cells[c]);
      }
      columns = cells.size();
      continue;
    }
    if (trim(line).empty())
      throw InputError(fmt::format("{}: row {}: empty line: expected {} comma-separated numbers", source, line_number,
                                   columns ? columns : size_t{1}));
    if (columns == 0) columns = cells.size();
    if (cells.size() != columns)
      throw InputError(fmt::format("{}: row {}: {} cells, but {} has {}: expected the same number in every row",
                                   source, line_number, cells.size(), header ? "the header" : "row 1", columns));
    for (size_t c = 0; c < cells.size(); ++c) {
      double value = 0;
      std::string problem;
      if (!parse_number(cells[c], value, problem))
        throw InputError(fmt::format("{}: row {}, column {}{}: value '{}' {}: expected a finite number", source,
                                     line_number, c + 1,
                                     header ? fmt::format(" ('{}')", shown(table.header[c])) : std::string(),
                                     shown(cells[c]), problem));
      values.push_back(value);
    }
    ++rows;
  }
  if (rows == 0) throw InputError(fmt::format("{}: no data rows after the header: expected comma-separated numbers", source));
  table.values = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      values.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(columns));
  return table;
}

Eigen::MatrixXd parse_npy(std::string_view bytes, std::string_view source) {
  const auto bad = [&](std::string_view what) {
    return InputError(fmt::format("{}: not a readable .npy file: {}", source, what));
  };
  if (bytes.size() < 10 || bytes.substr(0, 6) != std::string_view("\x93NUMPY", 6))
    throw bad("missing the \\x93NUMPY magic string");
  const auto major = static_cast<unsigned char>(bytes[6]);
  size_t header_length = 0, offset = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(bytes[8]) | static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw bad("truncated header");
    for (int b = 0; b < 4; ++b) header_length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + b])) << (8 * b);
    offset = 12;
  } else {
    throw bad(fmt::format("format version {} (expected 1, 2 or 3)", major));
  }
  if (header_length > bytes.size() - offset) throw bad("truncated header");
  const std::string_view dict = bytes.substr(offset, header_length);
  const std::string_view data = bytes.substr(offset + header_length);

  // The header is a Python dict literal: {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
  const auto value_of = [&](std::string_view key) {
    const size_t at = dict.find(fmt::format("'{}'", key));
    if (at == std::string_view::npos) throw bad(fmt::format("header has no '{}'", key));
    size_t colon = dict.find(':', at);
    if (colon == std::string_view::npos) throw bad(fmt::format("header entry '{}' has no value", key));
    return trim(dict.substr(colon + 1));
  };
  std::string_view descr = value_of("descr");
  if (descr.size() < 2 || descr.front() != '\'') throw bad("descr is not a string");
  descr = descr.substr(1, descr.find('\'', 1) == std::string_view::npos ? 0 : descr.find('\'', 1) - 1);
  const std::string_view order = value_of("fortran_order");
  const bool fortran = order.substr(0, 4) == "True";
  if (!fortran && order.substr(0, 5) != "False") throw bad("fortran_order is neither True nor False");
  std::string_view shape = value_of("shape");
  if (shape.empty() || shape.front() != '(' || shape.find(')') == std::string_view::npos) throw bad("shape is not a tuple");
  shape = shape.substr(1, shape.find(')') - 1);
  std::vector<uint64_t> dims;
  for (const std::string_view cell : split_cells(shape)) {
    if (cell.empty()) continue;  // the trailing comma of a 1-tuple
    uint64_t d = 0;
    const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), d);
    if (error != std::errc() || end != cell.data() + cell.size() || d > (uint64_t{1} << 40))
      throw bad(fmt::format("shape entry '{}' is not a size", shown(cell)));
    dims.push_back(d);
  }
  if (dims.empty() || dims.size() > 2)
    throw bad(fmt::format("array has {} dimensions: expected a 1-D or 2-D array", dims.size()));
  const uint64_t rows = dims.size() == 2 ? dims[0] : 1, cols = dims.back();
  if (rows == 0 || cols == 0)
    throw bad(fmt::format("the array is empty (shape {} x {}): expected at least one value", rows, cols));

  size_t width = 0;
  char kind = 0;
  if (descr == "<f8" || descr == "<i8" || descr == "<u8") width = 8;
  else if (descr == "<f4" || descr == "<i4" || descr == "<u4") width = 4;
  else if (descr == "<i2" || descr == "<u2") width = 2;
  else if (descr == "|i1" || descr == "|u1" || descr == "|b1") width = 1;
  else
    throw bad(fmt::format("dtype '{}': expected little-endian float64, float32, (u)int64/32/16/8 or bool", shown(descr)));
  kind = descr[1];
  if (rows != 0 && cols > (uint64_t{1} << 40) / rows) throw bad("array too large");
  if (data.size() != rows * cols * width)
    throw bad(fmt::format("{} data bytes, but shape and dtype need {}", data.size(), rows * cols * width));

  Eigen::MatrixXd out(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  for (uint64_t e = 0; e < rows * cols; ++e) {
    const char* p = data.data() + e * width;
    double v = 0;
    if (kind == 'f' && width == 8) { double d; std::memcpy(&d, p, 8); v = d; }
    else if (kind == 'f') { float f; std::memcpy(&f, p, 4); v = f; }
    else if (kind == 'i' && width == 8) { int64_t i; std::memcpy(&i, p, 8); v = static_cast<double>(i); }
    else if (kind == 'i' && width == 4) { int32_t i; std::memcpy(&i, p, 4); v = i; }
    else if (kind == 'i' && width == 2) { int16_t i; std::memcpy(&i, p, 2); v = i; }
    else if (kind == 'i') { v = static_cast<int8_t>(*p); }
    else if (width == 8) { uint64_t u; std::memcpy(&u, p, 8); v = static_cast<double>(u); }
    else if (width == 4) { uint32_t u; std::memcpy(&u, p, 4); v = u; }
    else if (width == 2) { uint16_t u; std::memcpy(&u, p, 2); v = u; }
    else { v = static_cast<unsigned char>(*p); }
    const uint64_t r = fortran ? e % rows : e / cols, c = fortran ? e / rows : e % cols;
    if (!std::isfinite(v))
      throw InputError(fmt::format("{}: row {}, column {}: value {} is not finite: expected finite numbers", source,
                                   r + 1, c + 1, v));
    out(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = v;
  }
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(fmt::format("cannot read '{}': it is a directory", path.string()));
  // Devices and pipes (/dev/zero, /dev/stdin) could block or never end: data must be a file.
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw InputError(fmt::format("cannot read '{}': not a regular file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read '{}': {}", path.string(), std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Eigen::MatrixXd load_matrix(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  if (path.extension() == ".npy") return parse_npy(bytes, path.string());
  return parse_csv(bytes, path.string(), false).values;
}

}  // namespace causalsweep
