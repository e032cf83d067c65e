#pragma once
// Reading the reference fixtures of tests/reference/ (CSV matrices, expected.json) in tests.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

namespace causalsweep::testing {

inline const std::string fixtures_dir = std::string(CAUSALSWEEP_SOURCE_DIR) + "/tests/reference/fixtures/";

// A CSV of numbers, one matrix row per line (skipping a header line when asked).
inline Eigen::MatrixXd read_csv_matrix(const std::string& path, bool header = false) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<std::vector<double>> rows;
  std::string line;
  if (header) std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  Eigen::MatrixXd m(static_cast<Eigen::Index>(rows.size()), rows.empty() ? 0 : static_cast<Eigen::Index>(rows[0].size()));
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = rows[i][j];
  return m;
}

// tests/reference/fixtures/expected.json, parsed once.
inline const nlohmann::json& expected_fixtures() {
  static const nlohmann::json data = [] {
    std::ifstream in(fixtures_dir + "expected.json");
    return nlohmann::json::parse(in);
  }();
  return data;
}

}  // namespace causalsweep::testing
