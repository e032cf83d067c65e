#pragma once
// The lasso's moments read straight from a network's Gram buffer, as regression_moments in
// host/estimators.cpp forms them (the CPU's operations exactly): H = X'X, q = X'y, yy = y'y over the
// observed neurons, centred with an intercept. Shared by kernels/lasso.cu and lasso_active_set.cu.
#include <cuda_runtime.h>

#include <cstddef>

namespace causalsweep::cuda {

// One network's Gram buffer (cuda_kernels.hpp's gram_doubles layout) and the observed neurons' parts.
struct GramView {
  const double* buffer;
  int n;
  __host__ __device__ int p() const { return 2 * n + 1; }
  __host__ __device__ double ww(int a, int b) const { return buffer[a + static_cast<size_t>(b) * p()]; }
  __host__ __device__ double wu(int a, int b) const {
    return buffer[static_cast<size_t>(p()) * p() + a + static_cast<size_t>(b) * p()];
  }
  __host__ __device__ double uu(int b) const { return buffer[static_cast<size_t>(p()) * (p() + 2 * n) + b]; }
  __host__ __device__ double transitions() const { return ww(0, 0); }
  __host__ __device__ double x_sum(int l) const { return ww(0, 1 + n + l); }
  __host__ __device__ double logit_sum(int i) const { return wu(0, n + i); }
};

// H(l, j) = sum x_l x_j, minus m mean_l mean_j with an intercept.
__host__ __device__ inline double centred_h(const GramView& g, bool intercept, double m, int l, int j) {
  const double raw = g.ww(1 + g.n + l, 1 + g.n + j);
  return intercept ? raw - g.x_sum(l) * g.x_sum(j) / m : raw;
}

// q_i(l) = sum x_l y_i (centred likewise), y_i = logit(x_i[t+1]).
__host__ __device__ inline double centred_q(const GramView& g, bool intercept, double m, int l, int i) {
  const double raw = g.wu(1 + g.n + l, g.n + i);
  return intercept ? raw - g.x_sum(l) * g.logit_sum(i) / m : raw;
}

// yy_i = sum y_i^2 (centred likewise).
__host__ __device__ inline double centred_yy(const GramView& g, bool intercept, double m, int i) {
  const double raw = g.uu(g.n + i);
  return intercept ? raw - g.logit_sum(i) * g.logit_sum(i) / m : raw;
}

}  // namespace causalsweep::cuda
