// The registry of model families beside the built-in rate model.
#include "causalsweep/model_family.hpp"

#include <array>
#include <stdexcept>
#include <string>

#include "causalsweep/results.hpp"

namespace causalsweep {
namespace {

// One entry per family; adding a model adds its line here.
std::array<const ModelFamily*, 1> registered_families() { return {&n_to_1_family()}; }

}  // namespace

std::vector<NetworkResult> ModelFamily::run_on_cuda(std::span<const NetworkTask>, const SweepGrid&, int,
                                                    PhaseTimes&) const {
  throw std::logic_error(std::string("model family ") + std::string(name()) + " has no CUDA path");
}

const ModelFamily* find_model_family(std::string_view name) {
  for (const ModelFamily* family : registered_families())
    if (family->name() == name) return family;
  return nullptr;
}

std::vector<std::string_view> model_family_names() {
  std::vector<std::string_view> names{"rate"};
  for (const ModelFamily* family : registered_families()) names.push_back(family->name());
  return names;
}

std::vector<std::vector<double>> parameter_points(const std::vector<std::vector<double>>& axes) {
  std::vector<std::vector<double>> points{{}};
  for (const auto& values : axes) {
    std::vector<std::vector<double>> longer;
    longer.reserve(points.size() * values.size());
    for (const auto& point : points)
      for (double v : values) {
        longer.push_back(point);
        longer.back().push_back(v);
      }
    points = std::move(longer);
  }
  return points;
}

}  // namespace causalsweep
