#!/usr/bin/python3
"""Independent reference results for the C++ estimator and score tests.

Simulates two small rate networks, one linear VAR(1) network (issue 4: Granger causality, t tests,
first-stage F, detection scores) and the Tutorial 4 smoking example with numpy's own random numbers,
writes the data as CSV, and computes every estimate with the libraries the tutorials use (numpy,
scikit-learn, statsmodels), not with causalsweep's Gram-matrix algebra. The C++ side does not repeat
the simulations: it reads the data from the CSV files, which round-trip float64 exactly.

The C++ tests compare at 1e-8 relative, so the fixtures must be far more accurate than that. Every
linear-algebra result is therefore re-derived in 256-bit arithmetic (mpmath) from the exact sums of
the written data and must agree to 1e-10 of the matrix's largest entry; the errors found are recorded
in expected.json under meta.checks.

Run from anywhere:  /usr/bin/python3 tests/reference/make_fixtures.py
(Debian packages python3-numpy python3-sklearn python3-statsmodels python3-mpmath.)
The output is deterministic.
"""
import json
import platform
import warnings
from pathlib import Path

import mpmath
import numpy as np
import sklearn
import statsmodels
import statsmodels.api as sm
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression
from sklearn.metrics import roc_auc_score
from sklearn.multioutput import MultiOutputRegressor
from sklearn.metrics import roc_curve
from statsmodels.sandbox.regression.gmm import IV2SLS
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.stattools import grangercausalitytests

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Seeds were chosen so that the 3 x 3 observed blocks hold both connected and unconnected pairs
# (otherwise corr_with_truth and auc would be undefined there and test nothing); asserted below.
SEED_RATE = 20240611
SEED_PERT = 20240612
SMOKING_SEED = 42  # the notebook's np.random.seed(42): the legacy global generator, on purpose

RATE = dict(n=8, timesteps=3000, eta=2.0, p_connect=0.3)
PERT = dict(n=6, timesteps=2000, eta=0.0, p_connect=0.3)
RATE_KS = [8, 5, 3, 1]
PERT_KS = [6, 3]
LASSO_ALPHA = 0.01
LASSO_TIGHT = dict(tol=1e-12, max_iter=1_000_000)
EXACT_TOLERANCE = 1e-10  # fixture vs 256-bit recomputation, relative to the matrix's largest entry
mpmath.mp.prec = 256

FORMULAS = {
    "connectivity": "A0[i][j] = rng.random() < p_connect (the whole n x n draw repeated until A0 has a "
                    "nonzero entry); A = A0 / (1.01 * np.linalg.svd(A0)[1][0])",
    "rate_simulation": "rng = np.random.default_rng(seed); A0 draws; Z = rng.integers(0, 2, size=(n, T)); "
                       "eps = rng.standard_normal((T - 1, n)); x[0] = 0; "
                       "x[t+1] = 1 / (1 + exp(-(A @ x[t] + eta * Z[:, t+1] + eps[t])))",
    "pert_simulation": "rng = np.random.default_rng(seed); A0 draws; x[0] = 0; for t = 0..T-2: "
                       "if t even: x[t] = rng.integers(0, 2, size=n); "
                       "x[t+1] = sigmoid(A @ x[t] + rng.standard_normal(n))",
    "observed": "first k neurons; transitions t = 0..T-2 (m = T - 1); W = X[:k, :-1].T, "
                "y_i = log(p / (1 - p)) with p = X[i, 1:], instruments Zk = Z[:k, :-1].T",
    "correlation": "V[i][j] = np.corrcoef(X[i, 1:], X[j, :-1])[0, 1] (Tutorial 2 correlation_for_all_neurons)",
    "perturbation": "P = X[:k, 0:T-1:2], O = X[:k, 1::2]; V[i][j] = np.corrcoef(O[i], P[j])[0, 1] "
                    "(Tutorial 1 get_perturbed_connectivity_all_neurons, transposed to A's orientation)",
    "ols": "LinearRegression(fit_intercept=False).fit(W, y_i).coef_",
    "ols_intercept": "LinearRegression(fit_intercept=True).fit(W, y_i).coef_ (intercept not stored)",
    "ols_se": "statsmodels OLS(y_i, W).fit().bse = sqrt(diag((W'W)^-1) * RSS / (m - k))",
    "ols_intercept_se": "statsmodels OLS(y_i, [1, W]).fit().bse[1:] = sqrt(diag(.) * RSS / (m - k - 1))",
    "lasso": f"Lasso(alpha={LASSO_ALPHA}, fit_intercept=False, tol=1e-12, max_iter=1000000): minimises "
             "1/(2m) ||y - W w||^2 + alpha ||w||_1; equals the closed-form optimum on its active set",
    "lasso_intercept": "as lasso with fit_intercept=True (unpenalised intercept: W and y centred)",
    "lasso_default": f"Lasso(alpha={LASSO_ALPHA}, fit_intercept=False) with scikit-learn's defaults "
                     "tol=1e-4, max_iter=1000 (the notebook's setting); see lasso_converged",
    "lasso_iterations": "Lasso.n_iter_ per target (coordinate-descent sweeps)",
    "iv": "Tutorial 4 get_iv_estimate_network with Z as instruments: stage 1 "
          "MultiOutputRegressor(LinearRegression(fit_intercept=True)).fit(Zk, W), xhat = predict(Zk); "
          "stage 2 MultiOutputRegressor(LinearRegression(fit_intercept=True)).fit(xhat, Y); slope rows",
    "iv_se": "statsmodels IV2SLS(y_i, exog=[1, W], instrument=[1, Zk]).fit().bse[1:] = "
             "sqrt(diag((Xhat'Xhat)^-1) * RSS / (m - k - 1)), Xhat = [1, xhat], RSS of the residuals "
             "y_i - [1, W] @ params (observed x, not xhat); unadjusted = homoskedastic, not robust",
    "corr_with_truth": "np.corrcoef(A[:k, :k].flatten(), V.flatten())[0, 1]; null when undefined",
    "auc": "sklearn.metrics.roc_auc_score(A[:k, :k].flatten() != 0, abs(V).flatten()); "
           "null when only one class is present",
    "smoking": "np.random.seed(42); data = np.random.multivariate_normal(mean=[0, 5, 2], cov=2 * covar, "
               "size=2000); columns Z, T, C; Y = 3000 + C - 2 * T",
    "smoking_iv": "stage 1 LinearRegression(fit_intercept=True).fit(Z, T); stage 2 the same of Y on "
                  "T_hat (effect, intercept); se = IV2SLS(Y, [1, T], [1, Z]).fit().bse[1]; "
                  "first_stage_f = OLS(T, [1, Z]).fit().fvalue",
}


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def logit(p):
    return np.log(p / (1.0 - p))


def draw_connectivity(rng, n, p_connect):
    while True:
        a0 = (rng.random((n, n)) < p_connect).astype(float)
        if a0.any():
            return a0 / (1.01 * np.linalg.svd(a0, compute_uv=False)[0])


def simulate_rate(seed, n, timesteps, eta, p_connect):
    rng = np.random.default_rng(seed)
    A = draw_connectivity(rng, n, p_connect)
    Z = rng.integers(0, 2, size=(n, timesteps))
    eps = rng.standard_normal((timesteps - 1, n))
    X = np.zeros((n, timesteps))
    for t in range(timesteps - 1):
        X[:, t + 1] = sigmoid(A @ X[:, t] + eta * Z[:, t + 1] + eps[t])
    return A, X, Z


def simulate_perturbed(seed, n, timesteps, p_connect):
    # Draws interleave as in Tutorial 1's simulate_neurons_perturb: clamp, then this step's noise.
    rng = np.random.default_rng(seed)
    A = draw_connectivity(rng, n, p_connect)
    X = np.zeros((n, timesteps))
    for t in range(timesteps - 1):
        if t % 2 == 0:
            X[:, t] = rng.integers(0, 2, size=n)
        X[:, t + 1] = sigmoid(A @ X[:, t] + rng.standard_normal(n))
    return A, X


def write_csv(path, rows, integer=False, header=None):
    """Writes and reads back, so every result below is computed from exactly what the C++ reads."""
    # '%.17g' round-trips every float64; instruments are written as plain 0/1.
    np.savetxt(path, rows, fmt="%d" if integer else "%.17g", delimiter=",",
               header=header or "", comments="")
    back = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1 if header else 0)
    assert np.array_equal(back, np.asarray(rows, dtype=float).reshape(back.shape)), path
    return back


def finite_or_none(x):
    x = float(x)
    return x if np.isfinite(x) else None


def matrix(M):
    return [[float(v) for v in row] for row in np.atleast_2d(M)]


def corr_with_truth(A_k, V):
    # np.corrcoef warns and returns NaN for constant inputs (k = 1, an empty block): that is the
    # "undefined" the fixture records as null.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return finite_or_none(np.corrcoef(A_k.flatten(), V.flatten())[0, 1])


def auc_or_none(labels, scores):
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, scores))


def scores(A_k, estimates):
    labels = A_k.flatten() != 0
    return {
        "corr_with_truth": {name: corr_with_truth(A_k, V) for name, V in estimates.items()},
        "auc": {name: auc_or_none(labels, np.abs(V).flatten()) for name, V in estimates.items()},
    }


def lagged_correlation(X):
    # Tutorial 2's correlation_for_all_neurons: rows of S are x[t+1] then x[t].
    n = len(X)
    S = np.concatenate([X[:, 1:], X[:, :-1]], axis=0)
    return np.corrcoef(S)[:n, n:]


def lasso_fit(W, y, intercept, **options):
    """Coefficients, coordinate-descent sweeps, and whether scikit-learn reports convergence."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = Lasso(alpha=LASSO_ALPHA, fit_intercept=intercept, **options).fit(W, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model.coef_, int(model.n_iter_), converged


def two_stage(instruments, regressors, y):
    """Tutorial 4 get_iv_estimate_network's two stages, with the instruments (not X) in stage 1."""
    stage1 = MultiOutputRegressor(LinearRegression(fit_intercept=True))
    stage1.fit(instruments, regressors)
    xhat = stage1.predict(instruments)
    stage2 = MultiOutputRegressor(LinearRegression(fit_intercept=True))
    stage2.fit(xhat, y)
    return np.array([e.coef_ for e in stage2.estimators_])


class ExactSums:
    """Sums of products of named data columns, in 256-bit arithmetic.

    Every product of two float64 values is exact at this precision and the rounding of the sums is
    ~1e-70 relative, so every regression built from these sums is, for the tests' purposes, the exact
    result for the data as written: an independent check on scikit-learn and statsmodels.
    """

    def __init__(self, columns):
        assert "one" in columns  # the all-ones column: its products with the others are the sums
        self.names = list(columns)
        values = [[mpmath.mpf(float(v)) for v in columns[name]] for name in self.names]
        self.count = len(values[0])
        self.gram = mpmath.matrix(len(values), len(values))
        for a in range(len(values)):
            for b in range(a, len(values)):
                self.gram[a, b] = self.gram[b, a] = mpmath.fdot(values[a], values[b])
        self.index = {name: i for i, name in enumerate(self.names)}

    def block(self, rows, cols):
        return mpmath.matrix([[self.gram[self.index[r], self.index[c]] for c in cols] for r in rows])

    def total(self, name):
        return self.gram[self.index["one"], self.index[name]]

    def centred(self, rows, cols):
        """Sums of products of the columns minus their means."""
        return mpmath.matrix([[self.gram[self.index[r], self.index[c]] - self.total(r) * self.total(c) / self.count
                               for c in cols] for r in rows])


def least_squares(sums, regressors, target):
    """Coefficients, residual sum of squares and (X'X)^-1 of target on regressors, from the sums."""
    inverse = mpmath.inverse(sums.block(regressors, regressors))
    g = sums.block(regressors, [target])
    b = inverse * g
    rss = sums.block([target], [target])[0, 0] - (b.T * g)[0, 0]
    return b, rss, inverse


def exact_rate_block(sums, k, lasso_rows):
    """The rate-network estimates for the first k neurons, recomputed from the exact sums.

    Lasso needs the active set and signs that scikit-learn found (lasso_rows): on that set the
    optimality conditions are linear, W_A'(y - W_A w_A) / m = alpha * s, so the optimum is one linear
    solve. The set is confirmed optimal when every inactive |W_j'(y - W w)| / m stays below alpha;
    the smallest such margin is returned with the estimates.
    """
    m = sums.count
    x = [f"x{j}" for j in range(k)]
    z = [f"z{j}" for j in range(k)]
    one = ["one"]
    out = {name: np.zeros((k, k)) for name in
           ["correlation", "ols", "ols_intercept", "iv", "ols_se", "ols_intercept_se", "iv_se",
            "lasso", "lasso_intercept"]}
    margin = mpmath.inf

    # Two-stage least squares as one formula: b = (X'Pz X)^-1 X'Pz y with Pz the projection on [1, z].
    exog, inst = one + x, one + z
    Gzz_inv = mpmath.inverse(sums.block(inst, inst))
    P = sums.block(exog, inst) * Gzz_inv
    iv_inv = mpmath.inverse(P * sums.block(inst, exog))
    for i in range(k):
        y, nxt = f"y{i}", f"next{i}"
        for j in range(k):
            cov = sums.centred([nxt], [x[j]])[0, 0]
            out["correlation"][i, j] = cov / mpmath.sqrt(sums.centred([nxt], [nxt])[0, 0]
                                                         * sums.centred([x[j]], [x[j]])[0, 0])
        b, rss, inv = least_squares(sums, x, y)
        out["ols"][i] = [b[j] for j in range(k)]
        out["ols_se"][i] = [mpmath.sqrt(inv[j, j] * rss / (m - k)) for j in range(k)]
        b, rss, inv = least_squares(sums, exog, y)
        out["ols_intercept"][i] = [b[1 + j] for j in range(k)]
        out["ols_intercept_se"][i] = [mpmath.sqrt(inv[1 + j, 1 + j] * rss / (m - k - 1)) for j in range(k)]
        b = iv_inv * P * sums.block(inst, [y])
        X_y = sums.block(exog, [y])
        rss = sums.block([y], [y])[0, 0] - 2 * (b.T * X_y)[0, 0] + (b.T * sums.block(exog, exog) * b)[0, 0]
        out["iv"][i] = [b[1 + j] for j in range(k)]
        out["iv_se"][i] = [mpmath.sqrt(iv_inv[1 + j, 1 + j] * rss / (m - k - 1)) for j in range(k)]

        for name, products in [("lasso", sums.block), ("lasso_intercept", sums.centred)]:
            w_fit = lasso_rows[name][i]
            active = [j for j in range(k) if w_fit[j] != 0]
            w = mpmath.matrix(k, 1)
            if active:
                rhs = products([x[j] for j in active], [y])
                for a, j in enumerate(active):
                    rhs[a, 0] -= m * LASSO_ALPHA * np.sign(w_fit[j])
                w_active = mpmath.inverse(products([x[j] for j in active], [x[j] for j in active])) * rhs
                for a, j in enumerate(active):
                    assert np.sign(float(w_active[a])) == np.sign(w_fit[j]), (name, k, i, j)
                    w[j] = w_active[a]
            gradient = (products(x, [y]) - products(x, x) * w) / m
            for j in range(k):
                if j not in active:
                    margin = min(margin, LASSO_ALPHA - abs(gradient[j]))
            out[name][i] = [w[j] for j in range(k)]
    return out, float(margin)


def relative_error(fixture, exact):
    """Largest deviation relative to the matrix's largest entry (elementwise relative error would be
    dominated by entries that are zero up to rounding)."""
    scale = np.max(np.abs(exact))
    return float(np.max(np.abs(np.asarray(fixture) - exact)) / (scale if scale > 0 else 1.0))


def record_check(checks, name, error):
    assert error < EXACT_TOLERANCE, (name, error)
    checks[name] = max(checks.get(name, 0.0), error)


def rate_block(A, X, Z, sums, k, checks):
    A_k = A[:k, :k]
    W = X[:k, :-1].T
    targets = X[:k, 1:]
    assert np.all((targets > 0) & (targets < 1)), "saturated sigmoid: logit undefined"
    Y = logit(targets).T  # (T-1) x k, column i is target i
    Zk = Z[:k, :-1].T.astype(float)

    estimates = {"correlation": lagged_correlation(X[:k])}
    estimates["ols"] = np.array([LinearRegression(fit_intercept=False).fit(W, Y[:, i]).coef_ for i in range(k)])
    estimates["ols_intercept"] = np.array([LinearRegression(fit_intercept=True).fit(W, Y[:, i]).coef_
                                           for i in range(k)])

    iterations, converged = {}, {}
    for name, intercept, options in [("lasso", False, LASSO_TIGHT), ("lasso_intercept", True, LASSO_TIGHT),
                                     ("lasso_default", False, {})]:
        fits = [lasso_fit(W, Y[:, i], intercept, **options) for i in range(k)]
        estimates[name] = np.array([w for w, _, _ in fits])
        iterations[name] = [it for _, it, _ in fits]
        converged[name] = [ok for _, _, ok in fits]
    # Only the defaults may stop at max_iter (that is how the notebook runs).
    assert all(converged["lasso"]) and all(converged["lasso_intercept"]), k

    estimates["iv"] = two_stage(Zk, W, Y)

    ones = np.ones((W.shape[0], 1))
    standard_errors = {"iv_se": [], "ols_se": [], "ols_intercept_se": []}
    for i in range(k):
        iv = IV2SLS(Y[:, i], np.hstack([ones, W]), instrument=np.hstack([ones, Zk])).fit()
        assert np.allclose(iv.params[1:], estimates["iv"][i], rtol=1e-9, atol=1e-12), (k, i)
        standard_errors["iv_se"].append(iv.bse[1:])
        standard_errors["ols_se"].append(sm.OLS(Y[:, i], W).fit().bse)
        standard_errors["ols_intercept_se"].append(sm.OLS(Y[:, i], np.hstack([ones, W])).fit().bse[1:])

    exact, margin = exact_rate_block(sums, k, estimates)
    assert margin > 1e-3 * LASSO_ALPHA, ("lasso active set not clearly optimal", k, margin)
    checks["lasso_min_inactive_margin"] = min(checks.get("lasso_min_inactive_margin", np.inf), margin)
    for name, V in list(estimates.items()) + list(standard_errors.items()):
        if name in exact:
            record_check(checks, name, relative_error(V, exact[name]))

    return {
        "k": k,
        "truth": matrix(A_k),
        "estimates": {name: matrix(V) for name, V in estimates.items()},
        **{name: matrix(se) for name, se in standard_errors.items()},
        "lasso_iterations": iterations,
        "lasso_converged": converged,
        **scores(A_k, estimates),
    }


def var_exact_sums(X, Z):
    """Exact sums for the VAR data: only what the Granger recomputation needs (no logit of x)."""
    columns = {"one": np.ones(X.shape[1] - 1)}
    columns.update({f"x{j}": X[j, :-1] for j in range(len(X))})
    columns.update({f"next{j}": X[j, 1:] for j in range(len(X))})
    return ExactSums(columns)


def rate_sums(X, Z):
    """Exact sums over all transitions of [1, z[t], x[t], x[t+1], logit(x[t+1])]."""
    columns = {"one": np.ones(X.shape[1] - 1)}
    columns.update({f"z{j}": Z[j, :-1] for j in range(len(X))})
    columns.update({f"x{j}": X[j, :-1] for j in range(len(X))})
    columns.update({f"next{j}": X[j, 1:] for j in range(len(X))})
    columns.update({f"y{j}": logit(X[j, 1:]) for j in range(len(X))})
    return ExactSums(columns)


def pert_block(A, X, k, checks):
    A_k = A[:k, :k]
    T = X.shape[1]
    P = X[:k, 0:T - 1:2]  # clamped states at even t <= T-2
    O = X[:k, 1::2]       # the step after each clamp
    assert P.shape == O.shape
    # Tutorial 1's get_perturbed_connectivity_all_neurons stacks [P, O]; its R is P-by-O, so the
    # O-by-P block below is that R transposed into A's (target, source) orientation.
    estimates = {
        "perturbation": np.corrcoef(np.concatenate([O, P], axis=0))[:k, k:],
        "correlation": lagged_correlation(X[:k]),
    }
    for name, (outcome, source) in {"perturbation": (O, P), "correlation": (X[:k, 1:], X[:k, :-1])}.items():
        sums = ExactSums({"one": np.ones(outcome.shape[1]),
                          **{f"o{i}": outcome[i] for i in range(k)}, **{f"s{j}": source[j] for j in range(k)}})
        exact = np.array([[sums.centred([f"o{i}"], [f"s{j}"])[0, 0]
                           / mpmath.sqrt(sums.centred([f"o{i}"], [f"o{i}"])[0, 0]
                                         * sums.centred([f"s{j}"], [f"s{j}"])[0, 0])
                           for j in range(k)] for i in range(k)], dtype=float)
        record_check(checks, f"pert_{name}", relative_error(estimates[name], exact))
    return {"k": k, "truth": matrix(A_k), "estimates": {name: matrix(V) for name, V in estimates.items()},
            **scores(A_k, estimates)}


def smoking(checks):
    # Tutorial 4 Section 1.1, verbatim: the legacy global generator with seed 42.
    covar = np.array([[1.0, 0.5, 0.0],
                      [0.5, 1.0, -0.5],
                      [0.0, -0.5, 1.0]])
    means = [0, 5, 2]
    np.random.seed(SMOKING_SEED)
    data = np.random.multivariate_normal(mean=means, cov=2 * covar, size=2000)
    Y = 3000 + data[:, 2] - (2 * (data[:, 1]))
    table = write_csv(FIXTURES / "smoking.csv", np.column_stack([data, Y]), header="Z,T,C,Y")
    Z, T, C, Y = (table[:, [c]] for c in range(4))

    # Exercises 1.3.1 and 1.3.2 (fit_first_stage, fit_second_stage) as their solutions.
    stage1 = LinearRegression(fit_intercept=True).fit(Z, T)
    T_hat = stage1.predict(Z)
    stage2 = LinearRegression(fit_intercept=True).fit(T_hat, Y)
    effect, intercept = stage2.coef_[0, 0], stage2.intercept_[0]
    corr_T_C = np.corrcoef(T.transpose(), C.transpose())[0, 1]
    corr_That_C = np.corrcoef(T_hat.transpose(), C.transpose())[0, 1]

    # The values the notebook prints.
    assert round(effect, 3) == -1.984, effect
    assert round(corr_T_C, 3) == -0.483, corr_T_C
    assert round(corr_That_C, 3) == 0.009, corr_That_C

    ones = np.ones_like(Z)
    iv = IV2SLS(Y[:, 0], np.hstack([ones, T]), instrument=np.hstack([ones, Z])).fit()
    assert np.allclose(iv.params, [intercept, effect], rtol=1e-9, atol=0), iv.params
    first_stage_f = sm.OLS(T[:, 0], np.hstack([ones, Z])).fit().fvalue

    # Exact: with one instrument, effect = cov(Z, Y) / cov(Z, T); F = the first stage's t^2.
    sums = ExactSums({"one": ones[:, 0], "Z": Z[:, 0], "T": T[:, 0], "Y": Y[:, 0]})
    m = sums.count
    exact_effect = sums.centred(["Z"], ["Y"])[0, 0] / sums.centred(["Z"], ["T"])[0, 0]
    exact_intercept = (sums.total("Y") - exact_effect * sums.total("T")) / m
    residual = sums.centred(["Y"], ["Y"])[0, 0] - 2 * exact_effect * sums.centred(["T"], ["Y"])[0, 0] \
        + exact_effect ** 2 * sums.centred(["T"], ["T"])[0, 0]
    # Var(effect) = s^2 * Szz / Szt^2: the [1, T_hat] design's slope entry of (Xhat'Xhat)^-1.
    exact_se = mpmath.sqrt(residual / (m - 2) * sums.centred(["Z"], ["Z"])[0, 0]
                           / sums.centred(["Z"], ["T"])[0, 0] ** 2)
    explained = sums.centred(["Z"], ["T"])[0, 0] ** 2 / sums.centred(["Z"], ["Z"])[0, 0]
    exact_f = explained / ((sums.centred(["T"], ["T"])[0, 0] - explained) / (m - 2))
    for name, got, want in [("effect", effect, exact_effect), ("intercept", intercept, exact_intercept),
                            ("se", iv.bse[1], exact_se), ("first_stage_f", first_stage_f, exact_f)]:
        record_check(checks, f"smoking_{name}", abs(float(got) - float(want)) / abs(float(want)))

    return {
        "effect": float(effect),
        "intercept": float(intercept),
        "se": float(iv.bse[1]),
        "first_stage_f": float(first_stage_f),
        "corr_T_C": float(corr_T_C),
        "corr_That_C": float(corr_That_C),
        "file": "smoking.csv",
        "notebook_printed": {"effect": -1.984, "corr_T_C": -0.483, "corr_That_C": 0.009},
    }


# ---- Issue 4: Granger causality, significance, detection scores, the linear VAR(1) model ----

SEED_VAR = 20240613
VAR = dict(n=6, timesteps=2000, eta=1.0, p_connect=0.3, p_inhibitory=0.3)
ALPHA = 0.05


def simulate_var(seed, n, timesteps, eta, p_connect, p_inhibitory):
    """The identity-nonlinearity model x[t+1] = A x[t] + eta z[t+1] + eps[t], with signed weights."""
    rng = np.random.default_rng(seed)
    while True:
        a0 = (rng.random((n, n)) < p_connect).astype(float)
        if a0.any():
            break
    a0[rng.random((n, n)) < p_inhibitory] *= -1.0
    A = a0 / (1.01 * np.linalg.svd(a0, compute_uv=False)[0])
    Z = rng.integers(0, 2, size=(n, timesteps))
    eps = rng.standard_normal((timesteps - 1, n))
    X = np.zeros((n, timesteps))
    for t in range(timesteps - 1):
        X[:, t + 1] = A @ X[:, t] + eta * Z[:, t + 1] + eps[t]
    return A, X, Z


def exact_chi2_1_sf(lr):
    return mpmath.erfc(mpmath.sqrt(mpmath.mpf(lr) / 2))


def exact_f_sf(f, df2):
    # F(1, df2) upper tail: I_{df2 / (df2 + F)}(df2 / 2, 1 / 2).
    return mpmath.betainc(mpmath.mpf(df2) / 2, mpmath.mpf(1) / 2, 0, mpmath.mpf(df2) / (df2 + mpmath.mpf(f)),
                          regularized=True)


def granger_tables(X, k, sums, checks, tag):
    """Lag-1 Granger tests of every ordered pair (j -> i) on the first k neurons.

    Off the diagonal: statsmodels grangercausalitytests([x_i, x_j], maxlag=1) ('lrtest' and 'ssr_ftest').
    The diagonal, which grangercausalitytests does not define (it would test x_i against itself),
    compares OLS x_i[t+1] ~ 1 + x_i[t] with x_i[t+1] ~ 1 (compare_lr_test / compare_f_test).
    Conditional: OLS x_i[t+1] ~ 1 + x_1[t] .. x_k[t] against the fit without x_j[t].
    """
    m = X.shape[1] - 1
    out = {name: np.zeros((k, k)) for name in ["lr", "lr_p", "f", "f_p", "cond_lr", "cond_lr_p", "cond_f", "cond_f_p"]}
    ones = np.ones((m, 1))
    W = X[:k, :-1].T
    for i in range(k):
        y = X[i, 1:]
        full = sm.OLS(y, np.hstack([ones, W])).fit()
        for j in range(k):
            if j == i:
                unrestricted = sm.OLS(y, np.hstack([ones, X[[i], :-1].T])).fit()
                restricted = sm.OLS(y, ones).fit()
                lr, lr_p, _ = unrestricted.compare_lr_test(restricted)
                f, f_p, _ = unrestricted.compare_f_test(restricted)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # 0.13's deprecation of `verbose`
                    res = grangercausalitytests(np.column_stack([X[i], X[j]]), maxlag=1, verbose=False)[1][0]
                lr, lr_p = res["lrtest"][:2]
                f, f_p, df_denom, _ = res["ssr_ftest"]
                assert df_denom == m - 3, (df_denom, m)
            out["lr"][i, j], out["lr_p"][i, j], out["f"][i, j], out["f_p"][i, j] = lr, lr_p, f, f_p
            dropped = sm.OLS(y, np.hstack([ones, np.delete(W, j, axis=1)])).fit()
            lr, lr_p, _ = full.compare_lr_test(dropped)
            f, f_p, _ = full.compare_f_test(dropped)
            out["cond_lr"][i, j], out["cond_lr_p"][i, j], out["cond_f"][i, j], out["cond_f_p"][i, j] = lr, lr_p, f, f_p

    # Exact recomputation from the 256-bit sums: the statistics, then their p-values in mpmath.
    x = [f"x{j}" for j in range(k)]
    exact = {name: np.zeros((k, k), dtype=object) for name in out}
    for i in range(k):
        target = f"next{i}"
        _, rss_full, _ = least_squares(sums, ["one"] + x, target)
        for j in range(k):
            _, rss_u, _ = least_squares(sums, ["one", x[i]] + ([x[j]] if j != i else []), target)
            _, rss_r, _ = least_squares(sums, ["one"] + ([x[i]] if j != i else []), target)
            df = m - (3 if j != i else 2)
            exact["lr"][i, j] = m * mpmath.log(rss_r / rss_u)
            exact["f"][i, j] = (rss_r - rss_u) / (rss_u / df)
            exact["lr_p"][i, j] = exact_chi2_1_sf(exact["lr"][i, j])
            exact["f_p"][i, j] = exact_f_sf(exact["f"][i, j], df)
            _, rss_drop, _ = least_squares(sums, ["one"] + [x[c] for c in range(k) if c != j], target)
            df = m - k - 1
            exact["cond_lr"][i, j] = m * mpmath.log(rss_drop / rss_full)
            exact["cond_f"][i, j] = (rss_drop - rss_full) / (rss_full / df)
            exact["cond_lr_p"][i, j] = exact_chi2_1_sf(exact["cond_lr"][i, j])
            exact["cond_f_p"][i, j] = exact_f_sf(exact["cond_f"][i, j], df)
    for name in out:
        if name.endswith("_p"):
            # p-values: relative error entry by entry (they span hundreds of orders of magnitude).
            err = max(abs(float(out[name][i, j]) - float(exact[name][i, j])) / float(exact[name][i, j])
                      for i in range(k) for j in range(k) if exact[name][i, j] > 1e-300)
            checks_tolerance = 5e-9  # scipy's F tail (cephes incbet) is the loosest, ~2.5e-9
            assert err < checks_tolerance, (tag, name, err)
            checks[f"{tag}_{name}_relative"] = max(checks.get(f"{tag}_{name}_relative", 0.0), err)
        else:
            record_check(checks, f"{tag}_{name}", relative_error(out[name], exact[name].astype(float)))
    # The exact p-values too: scipy's tails are good to ~1e-9, these to float64 rounding.
    for name in ["lr_p", "f_p", "cond_lr_p", "cond_f_p"]:
        out[f"exact_{name}"] = np.array([[float(v) for v in row] for row in exact[name]])
    return out


def detection(A_k, p, V=None):
    """Decisions, tpr/fpr, AUC of 1 - p (or |V|) and the ROC points, as scikit-learn computes them."""
    labels = A_k.flatten() != 0
    ranking = (1.0 - p).flatten() if V is None else np.abs(V).flatten()
    decisions = {}
    for correction, method in [("none", None), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")]:
        if method is None:
            d = p < ALPHA
        else:
            d = multipletests(p.flatten(), alpha=ALPHA, method=method)[0].reshape(p.shape)
        decisions[correction] = d.astype(float)
    d = decisions["none"].flatten()
    out = {
        "decisions": {name: matrix(d) for name, d in decisions.items()},
        "tpr": float(d[labels].mean()) if labels.any() else None,
        "fpr": float(d[~labels].mean()) if (~labels).any() else None,
        "auc": auc_or_none(labels, ranking),
    }
    if labels.any() and not labels.all():
        fpr, tpr, thresholds = roc_curve(labels, ranking, drop_intermediate=False)
        out["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": thresholds.tolist()}
    return out


def significance_block(A, X, Z, sums, k, checks, tag, logit_targets=True):
    """t tests of OLS and 2SLS coefficients, first-stage F, Granger tests and detection scores."""
    A_k = A[:k, :k]
    m = X.shape[1] - 1
    W = X[:k, :-1].T
    Y = (logit(X[:k, 1:]) if logit_targets else X[:k, 1:]).T
    Zk = Z[:k, :-1].T.astype(float)
    ones = np.ones((m, 1))
    ols = [sm.OLS(Y[:, i], W).fit() for i in range(k)]
    ols_i = [sm.OLS(Y[:, i], np.hstack([ones, W])).fit() for i in range(k)]
    iv = [IV2SLS(Y[:, i], np.hstack([ones, W]), instrument=np.hstack([ones, Zk])).fit() for i in range(k)]
    first_stage = [sm.OLS(W[:, j], np.hstack([ones, Zk])).fit().fvalue for j in range(k)]
    g = granger_tables(X, k, sums, checks, tag)
    return {
        "k": k,
        "truth": matrix(A_k),
        "ols": {"V": matrix([r.params for r in ols]), "se": matrix([r.bse for r in ols]),
                "t": matrix([r.tvalues for r in ols]), "p": matrix([r.pvalues for r in ols]), "df": m - k},
        "ols_intercept": {"V": matrix([r.params[1:] for r in ols_i]), "t": matrix([r.tvalues[1:] for r in ols_i]),
                          "p": matrix([r.pvalues[1:] for r in ols_i]), "df": m - k - 1},
        "iv": {"V": matrix([r.params[1:] for r in iv]), "se": matrix([r.bse[1:] for r in iv]),
               "t": matrix([r.tvalues[1:] for r in iv]), "p": matrix([r.pvalues[1:] for r in iv]), "df": m - k - 1,
               "first_stage_f_per_regressor": [float(f) for f in first_stage],
               "first_stage_f": float(min(first_stage))},
        "granger": {"lr": matrix(g["lr"]), "lr_p": matrix(g["lr_p"]), "f": matrix(g["f"]), "f_p": matrix(g["f_p"]),
                    "exact_lr_p": matrix(g["exact_lr_p"]), "exact_f_p": matrix(g["exact_f_p"]),
                    **detection(A_k, g["lr_p"])},
        "granger_conditional": {"lr": matrix(g["cond_lr"]), "lr_p": matrix(g["cond_lr_p"]), "f": matrix(g["cond_f"]),
                                "f_p": matrix(g["cond_f_p"]), "exact_lr_p": matrix(g["exact_cond_lr_p"]),
                                "exact_f_p": matrix(g["exact_cond_f_p"]), **detection(A_k, g["cond_lr_p"])},
        "ols_detection": detection(A_k, np.array([r.pvalues for r in ols]), V=np.array([r.params for r in ols])),
    }


def auc_cases():
    # Ties within and across classes, ties at the extremes, perfect and inverted ranking, and
    # one single-class case whose AUC is undefined (sklearn raises; recorded as null).
    cases = [
        ("ties_across_classes", [0.1, 0.4, 0.35, 0.8, 0.4, 0.4], [0, 0, 1, 1, 1, 0]),
        ("all_tied", [0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]),
        ("perfect", [0.1, 0.2, 0.3, 0.9, 0.95], [0, 0, 0, 1, 1]),
        ("inverted", [0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1]),
        ("zeros_tied_like_lasso", [0.0, 0.0, 0.0, 0.3, 0.0, 0.7, 0.2, 0.0], [0, 1, 0, 1, 0, 1, 0, 1]),
        ("duplicates_each_class", [1, 1, 2, 2, 3, 3, 3, 4], [0, 1, 0, 1, 0, 0, 1, 1]),
        ("one_positive", [0.3, 0.1, 0.2, 0.3, 0.05], [1, 0, 0, 0, 0]),
        ("single_class", [0.2, 0.4, 0.1], [1, 1, 1]),
    ]
    return [{"name": name, "scores": [float(s) for s in scores], "labels": labels,
             "auc": auc_or_none(labels, scores)} for name, scores, labels in cases]


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    checks = {}

    A, X, Z = simulate_rate(SEED_RATE, **RATE)
    A = write_csv(FIXTURES / "rate_A.csv", A)
    X = write_csv(FIXTURES / "rate_X.csv", X)
    Z = write_csv(FIXTURES / "rate_Z.csv", Z, integer=True).astype(int)
    sums = rate_sums(X, Z)
    rate_blocks = [rate_block(A, X, Z, sums, k, checks) for k in RATE_KS]

    Ap, Xp = simulate_perturbed(SEED_PERT, PERT["n"], PERT["timesteps"], PERT["p_connect"])
    Ap = write_csv(FIXTURES / "pert_A.csv", Ap)
    Xp = write_csv(FIXTURES / "pert_X.csv", Xp)
    pert_blocks = [pert_block(Ap, Xp, k, checks) for k in PERT_KS]

    for block in rate_blocks + pert_blocks:
        if block["k"] == 3:
            assert block["auc"]["correlation"] is not None, "pick another seed: 3 x 3 block is one class"

    significance = [significance_block(A, X, Z, sums, k, checks, "rate") for k in [8, 5, 1]]

    Av, Xv, Zv = simulate_var(SEED_VAR, **VAR)
    Av = write_csv(FIXTURES / "var_A.csv", Av)
    Xv = write_csv(FIXTURES / "var_X.csv", Xv)
    Zv = write_csv(FIXTURES / "var_Z.csv", Zv, integer=True).astype(int)
    var_significance = [significance_block(Av, Xv, Zv, var_exact_sums(Xv, Zv), k, checks, "var", logit_targets=False)
                        for k in [6, 3]]
    assert (Av < 0).any() and (Av > 0).any(), "pick another seed: the VAR's A should have both signs"

    smoking_iv = smoking(checks)
    # Not a check: how far the notebook's default stopping rule leaves lasso from its optimum, which
    # is why a test of lasso_default must follow scikit-learn's iterations, not just converge.
    default_gap = max(relative_error(b["estimates"]["lasso_default"], np.array(b["estimates"]["lasso"]))
                      for b in rate_blocks)
    expected = {
        "meta": {
            "generator": "tests/reference/make_fixtures.py",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "statsmodels": statsmodels.__version__,
            "mpmath": mpmath.__version__,
            "seeds": {"rate": SEED_RATE, "pert": SEED_PERT, "smoking_legacy_np_random_seed": SMOKING_SEED},
            "rng": "np.random.default_rng(seed) (PCG64) for rate and pert; the smoking data use "
                   "np.random.seed(42) + np.random.multivariate_normal exactly as the notebook",
            "layout": "matrices are nested lists, row = target i, column = source j; CSV files have "
                      "one row per neuron and one column per time step",
            "formulas": FORMULAS,
            "checks": {
                "what": "largest deviation of each fixture from its 256-bit recomputation from the exact "
                        "sums of the written data, relative to the matrix's largest entry (scalars: "
                        f"relative); all asserted < {EXACT_TOLERANCE}. lasso_min_inactive_margin: alpha "
                        "minus the largest |gradient| over coefficients at zero (> 0: active set optimal)",
                **checks,
            },
            "lasso_default_vs_lasso": default_gap,
        },
        "rate": {**RATE, "seed": SEED_RATE, "files": {"A": "rate_A.csv", "X": "rate_X.csv", "Z": "rate_Z.csv"},
                 "lasso_alpha": LASSO_ALPHA, "observed": rate_blocks},
        "pert": {**PERT, "seed": SEED_PERT, "files": {"A": "pert_A.csv", "X": "pert_X.csv"},
                 "observed": pert_blocks},
        "smoking_iv": smoking_iv,
        "significance": {
            "alpha": ALPHA,
            "formulas": {
                "granger": "lag-1, targets x[t+1] itself (not logit): off the diagonal statsmodels "
                           "grangercausalitytests(np.column_stack([x_i, x_j]), maxlag=1)[1][0]: lr = 'lrtest' "
                           "(statistic, p), f = 'ssr_ftest' (statistic, p; df = (1, T - 4)); on the diagonal OLS "
                           "x_i[t+1] ~ 1 + x_i[t] against ~ 1 (compare_lr_test, compare_f_test; df = (1, T - 3))",
                "granger_conditional": "OLS x_i[t+1] ~ 1 + x_1..x_k[t] against the fit without x_j[t]: "
                                       "compare_lr_test, compare_f_test (df = (1, T - k - 2))",
                "ols": "statsmodels OLS(y_i, W).fit(): params, bse, tvalues, pvalues (Student t, df = T - 1 - k)",
                "ols_intercept": "statsmodels OLS(y_i, [1, W]).fit(), slope rows (df = T - 2 - k)",
                "iv": "statsmodels IV2SLS(y_i, [1, W], [1, Zk]).fit(): params, bse, tvalues, pvalues (df = T - 2 - k)",
                "first_stage_f": "min over j of statsmodels OLS(x_j[t], [1, z_1..z_k[t]]).fit().fvalue",
                "decisions": "none: p < alpha; bonferroni, bh: statsmodels multipletests(p.flatten(), alpha, "
                             "'bonferroni' | 'fdr_bh')[0] over the k x k tests",
                "tpr_fpr": "mean of the 'none' decisions over A != 0 (tpr) and A == 0 (fpr), diagonal included",
                "auc": "roc_auc_score(A != 0, 1 - p) for granger*, roc_auc_score(A != 0, |V|) for ols",
                "roc": "sklearn roc_curve(A != 0, ranking, drop_intermediate=False)",
                "var": "the identity-nonlinearity model: x[t+1] = A x[t] + eta z[t+1] + eps[t], x[0] = 0, "
                       "A0 ~ Bernoulli(p_connect) with each connection negated with probability p_inhibitory, "
                       "A = A0 / (1.01 s_max(A0)); targets of ols and iv are x[t+1] itself",
            },
            "rate": significance,
            "var": {**VAR, "seed": SEED_VAR, "files": {"A": "var_A.csv", "X": "var_X.csv", "Z": "var_Z.csv"},
                    "observed": var_significance},
        },
        "auc_cases": auc_cases(),
    }
    with open(FIXTURES / "expected.json", "w") as f:
        json.dump(expected, f, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
