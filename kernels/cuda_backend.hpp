#pragma once
// The host side of the CUDA backend that tests reach without a GPU (C++20; not for .cu files):
// how a kernel's Gram buffer becomes a Gram and how a batch is cut into launches. Networks are
// scored from their Grams by score_network (host/cpu_network.hpp), the CPU backend's own path.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include <Eigen/Dense>

#include "causalsweep/gram.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"

namespace causalsweep::cuda {

// Transitions a network of T steps adds to its Grams: all (t = 0 .. T-2), and the even t only
// (perturbation mode), exactly as host/simulate.cpp counts them.
constexpr int64_t transitions_all(int timesteps) { return timesteps >= 2 ? timesteps - 1 : 0; }
constexpr int64_t transitions_even(int timesteps) { return timesteps >= 2 ? timesteps / 2 : 0; }

// A Gram from a kernel's buffer (layout: cuda_kernels.hpp's gram_doubles).
Gram unpack_gram(const double* buffer, int n, int64_t transitions, int64_t saturated_logits);

// One launch: networks of one size n and mode (indices into the batch, in batch order).
struct Chunk {
  int n = 0;
  bool perturb = false;
  std::vector<size_t> members;
};

// Groups a batch by (n, perturb), in order of first appearance, and cuts each group into chunks of
// at most max_networks(n, perturb) networks (taken as 1 when smaller). Every network is in exactly
// one chunk, and members keep batch order.
std::vector<Chunk> plan_chunks(std::span<const NetworkTask> batch,
                               const std::function<size_t(int n, bool perturb)>& max_networks);

// The sweep (TOML) a device must reproduce, through the whole CUDA path, before the backend uses it.
const char* self_check_config();

}  // namespace causalsweep::cuda
