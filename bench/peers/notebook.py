#!/usr/bin/python3
"""Peer baseline: the Neuromatch tutorials' own code path, one network per seed.

A reviewer should be able to read this file against Tutorial 4 ("Instrumental Variables") function
by function: each function below carries the notebook's name and body, changed only where a comment
says so. It is the baseline causalsweep is timed and checked against, so it keeps the notebook's
costs on purpose: a per-step np.random.multivariate_normal draw (an SVD of the identity every step),
np.random.choice, and one scikit-learn fit per target through MultiOutputRegressor(n_jobs=-1), whose
joblib worker pool starts inside the first timed fit, as it does in the notebook.

Deviations from the notebook, all deliberate:
- get_iv_estimate_network is given Z as the instruments. Tutorial 4's
  compare_iv_estimate_to_regression passes X (sel_Z = X[:sel_idx, :]), which makes its "IV" curve
  ordinary least squares with an intercept (SPEC.md section 5).
- The observed count is np.clip(int(n * ratio), 1, n), as the notebook's get_regression_corr, so a
  small ratio never leaves zero neurons.
- An OLS variant of get_regression_estimate (LinearRegression(fit_intercept=False)) is added, the
  tutorials' alpha = 0 case.

Usage (from the repository root):
  /usr/bin/python3 bench/peers/notebook.py --n 100 --timesteps 5000 --seeds 1 \\
      --ratios 1,0.8,0.6,0.4,0.2 --json OUT
The JSON object goes to OUT, or to stdout without --json; progress goes to stderr.
phase_seconds are totals over all seeds and ratios; seconds_per_network is their sum per seed.
"""
import argparse
import json
import os
import platform
import sys
import time
import warnings

import joblib
import numpy as np
import scipy
import sklearn
from sklearn.linear_model import Lasso, LinearRegression
from sklearn.multioutput import MultiOutputRegressor

PHASES = ["simulate", "correlation", "lasso", "ols", "iv"]


# --- Tutorial 4, "Helper Functions" -------------------------------------------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def logit(x):
    return np.log(x / (1 - x))


def create_connectivity(n_neurons, random_state=42, p=0.9):
    # Verbatim: 1 - p = 0.1 of the entries are connections; scaled so the largest singular value is
    # 1/1.01 ("set the timescale of the dynamical system to about 100 steps").
    np.random.seed(random_state)
    A_0 = np.random.choice([0, 1], size=(n_neurons, n_neurons), p=[p, 1 - p])
    _, s_vals, _ = np.linalg.svd(A_0)
    A = A_0 / (1.01 * s_vals[0])
    return A


def correlation_for_all_neurons(X):
    # Verbatim (Tutorial 2): rows of S are x[t+1] then x[t]; R[i][j] = corr(x_i[t+1], x_j[t]).
    n_neurons = len(X)
    S = np.concatenate([X[:, 1:], X[:, :-1]], axis=0)
    R = np.corrcoef(S)[:n_neurons, n_neurons:]
    return R


def get_regression_estimate(X):
    # Tutorial 3's lasso, verbatim except the unused neuron_idx option is left out.
    n_neurons = X.shape[0]

    # Extract Y and W as defined above
    W = X[:, :-1].transpose()
    Y = X[:, 1:].transpose()

    # apply inverse sigmoid transformation
    Y = logit(Y)

    # fit multioutput regression
    regression = MultiOutputRegressor(Lasso(fit_intercept=False, alpha=0.01), n_jobs=-1)

    regression.fit(W, Y)

    V = np.zeros((n_neurons, n_neurons))
    for i, estimator in enumerate(regression.estimators_):
        V[i, :] = estimator.coef_

    return V


def get_ols_estimate(X):
    # Not in the notebook: get_regression_estimate with alpha = 0, i.e. LinearRegression without
    # intercept, through the same MultiOutputRegressor so its cost is comparable.
    n_neurons = X.shape[0]
    W = X[:, :-1].transpose()
    Y = logit(X[:, 1:].transpose())

    regression = MultiOutputRegressor(LinearRegression(fit_intercept=False), n_jobs=-1)
    regression.fit(W, Y)

    V = np.zeros((n_neurons, n_neurons))
    for i, estimator in enumerate(regression.estimators_):
        V[i, :] = estimator.coef_

    return V


# --- Tutorial 4, Section 2.1 (Coding Exercise 2.1, with its solution) ---------------------------

def simulate_neurons_iv(n_neurons, timesteps, eta, random_state=42):
    # Verbatim. The global seed is set twice (here and in create_connectivity), so A is drawn from
    # a fresh seed and Z continues the same stream after A, exactly as in the notebook.
    np.random.seed(random_state)
    A = create_connectivity(n_neurons, random_state)

    X = np.zeros((n_neurons, timesteps))
    Z = np.random.choice([0, 1], size=(n_neurons, timesteps))
    for t in range(timesteps - 1):
        # The exercise's solution: the instrument of the step being computed.
        IV_on_this_timestep = eta * Z[:, t + 1]

        X[:, t + 1] = sigmoid(A.dot(X[:, t]) + IV_on_this_timestep
                              + np.random.multivariate_normal(np.zeros(n_neurons), np.eye(n_neurons)))

    return A, X, Z


# --- Tutorial 4, Section 2.2 --------------------------------------------------------------------

def get_iv_estimate_network(X, Z):
    # Verbatim.
    n_neurons = X.shape[0]
    Y = X[:, 1:].transpose()

    # apply inverse sigmoid transformation
    Y = logit(Y)

    # Stage 1: regress X on Z
    stage1 = MultiOutputRegressor(LinearRegression(fit_intercept=True), n_jobs=-1)
    stage1.fit(Z[:, :-1].transpose(), X[:, :-1].transpose())
    X_hat = stage1.predict(Z[:, :-1].transpose())

    # Stage 2: regress Y on X_hat
    stage2 = MultiOutputRegressor(LinearRegression(fit_intercept=True), n_jobs=-1)
    stage2.fit(X_hat, Y)

    # Get estimated effects
    V = np.zeros((n_neurons, n_neurons))
    for i, estimator in enumerate(stage2.estimators_):
        V[i, :] = estimator.coef_

    return V


# --- Tutorial 4, Section 3: compare_iv_estimate_to_regression, per seed and timed ----------------

ESTIMATORS = [
    ("correlation", lambda sel_X, sel_Z: correlation_for_all_neurons(sel_X)),
    ("lasso", lambda sel_X, sel_Z: get_regression_estimate(sel_X)),
    ("ols", lambda sel_X, sel_Z: get_ols_estimate(sel_X)),
    ("iv", get_iv_estimate_network),
]


def compare_estimators(n_neurons, timesteps, eta, random_state, observed_ratio, phase_seconds):
    started = time.perf_counter()
    A, X, Z = simulate_neurons_iv(n_neurons, timesteps, eta, random_state)
    phase_seconds["simulate"] += time.perf_counter() - started

    scores = []
    for ratio in observed_ratio:
        sel_idx = int(np.clip(int(n_neurons * ratio), 1, n_neurons))

        sel_X = X[:sel_idx, :]
        sel_Z = Z[:sel_idx, :]  # the notebook has X[:sel_idx, :] here: see the module docstring
        sel_A = A[:sel_idx, :sel_idx]

        for name, estimate in ESTIMATORS:
            started = time.perf_counter()
            sel_V = estimate(sel_X, sel_Z)
            phase_seconds[name] += time.perf_counter() - started
            # The notebook's score. NaN for one observed neuron (a single entry); JSON gets null.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                corr = np.corrcoef(sel_A.flatten(), sel_V.flatten())[1, 0]
            scores.append({"seed": random_state, "observed_ratio": ratio, "estimator": name,
                           "corr_with_truth": float(corr) if np.isfinite(corr) else None})
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="neurons (notebook: 100 in Section 2.1)")
    parser.add_argument("--timesteps", type=int, default=5000)
    parser.add_argument("--eta", type=float, default=2.0, help="instrument strength")
    parser.add_argument("--seeds", type=int, default=1, help="number of networks (seeds)")
    parser.add_argument("--first-seed", type=int, default=42,
                        help="seed of the first network, then +1 each (notebook: random_state=42)")
    parser.add_argument("--ratios", default="1,0.8,0.6,0.4,0.2", help="observed ratios, comma separated")
    parser.add_argument("--json", metavar="OUT", help="write the result here instead of stdout")
    args = parser.parse_args()

    ratios = [float(r) for r in args.ratios.split(",")]
    seed_values = list(range(args.first_seed, args.first_seed + args.seeds))
    phase_seconds = {phase: 0.0 for phase in PHASES}
    scores = []
    for seed in seed_values:
        scores += compare_estimators(args.n, args.timesteps, args.eta, seed, ratios, phase_seconds)
        print(f"seed {seed} done, {sum(phase_seconds.values()):.1f} s so far", file=sys.stderr)

    result = {
        "n": args.n,
        "timesteps": args.timesteps,
        "eta": args.eta,
        "seeds": args.seeds,
        "seed_values": seed_values,
        "ratios": ratios,
        "seconds_per_network": sum(phase_seconds.values()) / args.seeds,
        "phase_seconds": phase_seconds,
        "scores": scores,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "joblib": joblib.__version__,
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
        },
    }
    text = json.dumps(result, indent=1, allow_nan=False)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
