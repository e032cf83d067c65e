#pragma once
// Reading the user's numbers: CSV (with or without a header row) and numpy .npy files. Every
// problem is an InputError naming the file, the row and column (1-based, as a spreadsheet shows
// them), the value and what was expected; the readers never crash on any input (fuzzed).
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Dense>

namespace causalsweep {

struct NumericTable {
  std::vector<std::string> header;  // column names when read with a header row, else empty
  Eigen::MatrixXd values;           // rows x columns, every entry finite
};

// Comma-separated numbers, one table row per line ("\n" or "\r\n"); spaces around a cell are
// ignored, trailing empty lines too. Every row must have as many cells as the first, every cell a
// finite decimal number. `header`: the first line holds column names (unique, non-empty).
NumericTable parse_csv(std::string_view text, std::string_view source, bool header);

// A .npy file (format 1.0-3.0) holding a 1-D or 2-D array of little-endian float64/float32/
// int64/int32/int16/int8/uint8/bool, C or Fortran order; 1-D arrays become one row.
Eigen::MatrixXd parse_npy(std::string_view bytes, std::string_view source);

// Reads a whole file (InputError if it cannot be read).
std::string read_file(const std::filesystem::path& path);

// A matrix from a .npy file (by extension) or a headerless CSV file.
Eigen::MatrixXd load_matrix(const std::filesystem::path& path);

}  // namespace causalsweep
