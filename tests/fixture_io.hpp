#pragma once
// Reading the reference fixtures of tests/reference/ (CSV matrices, expected.json) in tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// A matrix from nested JSON lists; null (a NaN the fixture script wrote) becomes NaN.
inline Eigen::MatrixXd json_matrix(const nlohmann::json& nested) {
  Eigen::MatrixXd m(static_cast<Eigen::Index>(nested.size()), static_cast<Eigen::Index>(nested.at(0).size()));
  for (size_t i = 0; i < nested.size(); ++i)
    for (size_t j = 0; j < nested[i].size(); ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
          nested[i][j].is_null() ? std::nan("") : nested[i][j].get<double>();
  return m;
}

// Entry-wise |a - b| <= rel * max(|b|, 1% of the largest reference entry): relative for every
// entry that matters, without demanding relative precision of entries that are ~0.
inline void expect_close(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& reference, double rel,
                         const std::string& what) {
  ASSERT_EQ(actual.rows(), reference.rows()) << what;
  ASSERT_EQ(actual.cols(), reference.cols()) << what;
  const double scale = 0.01 * reference.cwiseAbs().maxCoeff();
  double worst = 0;
  for (Eigen::Index i = 0; i < actual.size(); ++i)
    worst = std::max(worst, std::abs(actual(i) - reference(i)) / std::max(std::abs(reference(i)), scale));
  EXPECT_LE(worst, rel) << what << ": worst relative error " << worst;
}

}  // namespace causalsweep::testing
