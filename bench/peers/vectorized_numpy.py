#!/usr/bin/python3
"""Peer: what a competent numpy user writes instead of the notebook code, on the CPU.

The same workload as causalsweep (SPEC's rate model and estimators), done the vectorised way:
  - all networks of a batch simulated at once: state (B, n), one matmul per step, noise and
    instruments drawn as whole arrays (numpy's default_rng, not causalsweep's Philox streams);
  - trajectories stored (B, n, T) float64, then every estimator from normal equations with
    numpy.linalg (batched solves), and the lasso with scikit-learn's coordinate descent on a
    precomputed Gram (the fastest standard route), per target;
  - scores: np.corrcoef of the observed block of A with V, as the tutorials.
Prints one JSON object: timings per phase and per-network scores (for the harness's agreement
check against causalsweep's seed-averaged curves).

Usage: /usr/bin/python3 bench/peers/vectorized_numpy.py --n 100 --timesteps 5000 --networks 16 \\
           --eta 2 --ratios 1,0.8,0.6,0.4,0.2 [--batch 16] [--json OUT]
"""
import argparse
import json
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

PHASES = ["generate", "simulate", "correlation", "lasso", "ols", "iv"]


def connectivity(rng, n, p):
    A0 = (rng.random((n, n)) < p).astype(float)
    s = np.linalg.norm(A0, 2)
    return A0 / (1.01 * s) if s > 0 else A0


def simulate(A, timesteps, eta, rng):
    """A: (B, n, n). Returns X, Z: (B, n, T)."""
    B, n, _ = A.shape
    X = np.zeros((B, n, timesteps))
    Z = (rng.random((B, n, timesteps)) < 0.5).astype(float)
    noise = rng.standard_normal((B, n, timesteps))
    for t in range(timesteps - 1):
        u = np.einsum("bij,bj->bi", A, X[:, :, t]) + eta * Z[:, :, t + 1] + noise[:, :, t]
        X[:, :, t + 1] = 1.0 / (1.0 + np.exp(-u))
    return X, Z


def corr_with_truth(A_k, V):
    return float(np.corrcoef(A_k.ravel(), V.ravel())[0, 1]) if V.size > 1 else float("nan")


def estimates(X, Z, k, timers):
    """All estimators on the first k neurons of one network's trajectory (n, T)."""
    W = X[:k, :-1]                       # regressors x[t]        (k, m)
    Xn = X[:k, 1:]                       # targets x[t+1]
    Y = np.log(Xn / (1 - Xn))            # logit targets
    Zk = Z[:k, :-1]                      # instruments z[t]
    m = W.shape[1]
    out = {}

    t0 = time.perf_counter()
    Wc = W - W.mean(1, keepdims=True)
    Xc = Xn - Xn.mean(1, keepdims=True)
    out["correlation"] = (Xc @ Wc.T) / np.outer(np.linalg.norm(Xc, axis=1), np.linalg.norm(Wc, axis=1))
    timers["correlation"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    G = W @ W.T                          # Gram of the regressors
    WY = W @ Y.T
    out["ols"] = np.linalg.solve(G, WY).T
    timers["ols"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    V = np.empty((k, k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(k):
            model = Lasso(alpha=0.01, fit_intercept=False, precompute=G, copy_X=False)
            model.fit(W.T, Y[i], )
            V[i] = model.coef_
    out["lasso"] = V
    timers["lasso"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    Z1 = np.vstack([np.ones((1, m)), Zk])          # [1, z]  (k+1, m)
    X1 = np.vstack([np.ones((1, m)), W])           # [1, x]
    gamma = np.linalg.solve(Z1 @ Z1.T, Z1 @ X1.T)  # first stage, all regressors at once
    Xhat = gamma.T @ Z1                            # (k+1, m), row 0 is the constant
    beta = np.linalg.solve(Xhat @ Xhat.T, Xhat @ Y.T)
    out["iv"] = beta[1:].T
    timers["iv"] += time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--timesteps", type=int, default=5000)
    ap.add_argument("--networks", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16, help="networks simulated at once")
    ap.add_argument("--eta", type=float, default=2.0)
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--ratios", default="1,0.8,0.6,0.4,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    ratios = [float(r) for r in a.ratios.split(",")]
    rng = np.random.default_rng(a.seed)
    timers = dict.fromkeys(PHASES, 0.0)
    scores = []
    start = time.perf_counter()
    for b0 in range(0, a.networks, a.batch):
        B = min(a.batch, a.networks - b0)
        t0 = time.perf_counter()
        A = np.stack([connectivity(rng, a.n, a.p) for _ in range(B)])
        timers["generate"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        X, Z = simulate(A, a.timesteps, a.eta, rng)
        timers["simulate"] += time.perf_counter() - t0
        for b in range(B):
            for ratio in ratios:
                k = int(np.clip(int(a.n * ratio), 1, a.n))
                for name, V in estimates(X[b], Z[b], k, timers).items():
                    scores.append({"network": b0 + b, "observed_ratio": ratio, "estimator": name,
                                   "corr_with_truth": corr_with_truth(A[b, :k, :k], V)})
    total = time.perf_counter() - start
    result = {"peer": "vectorized_numpy", "n": a.n, "timesteps": a.timesteps, "networks": a.networks,
              "eta": a.eta, "seconds_total": total, "seconds_per_network": total / a.networks,
              "phase_seconds": timers, "scores": scores,
              "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "sklearn": sklearn.__version__}}
    text = json.dumps(result, indent=1, allow_nan=True)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
