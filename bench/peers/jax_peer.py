#!/usr/bin/env python3
"""Peer: the same workload as causalsweep written the way a competent JAX user would, for the GPU.

The workload is the one of bench/peers/vectorized_numpy.py and SPEC.md (rate network
x[t+1] = sigmoid(A x[t] + eta z[t+1] + eps[t]), x[0] = 0, z ~ Bernoulli(0.5), A 10% connected scaled
by 1.01 x its largest singular value; correlation, lasso, ols and iv on the first k observed neurons
for every observed ratio; corr_with_truth on the observed block). How it is done here:

  - networks in batches of B (all batches the same shape, so one compilation serves all): A
    drawn with jax.random (threefry), its largest singular value by power iteration on A0^T A0;
  - simulation: jax.lax.scan over L time steps (one batched mat-vec + sigmoid per step), inside a
    jax.lax.fori_loop over chunks of L steps; after each chunk the sufficient statistics are
    accumulated with two batched matrix products and the trajectory chunk is dropped (nothing of
    size T is ever stored). Statistics: M = sum u u^T and N = sum u v^T with u[t] = [1, z[t], x[t]],
    v[t] = [x[t+1], logit(x[t+1])], and the sums of x[t+1]^2 and logit(x[t+1])^2, t = 0 .. T-2;
  - simulation precision: --sim-dtype (default float32; the mat-vec at Precision.HIGHEST, no TF32);
    statistics, solves and scores always float64 (jax_enable_x64). The float32 trajectory is cast to
    float64 before the Gram products, so the Grams are exact sums of the simulated values;
  - estimators from leading sub-blocks of the same statistics, every ratio from one simulation:
    correlation from the moments; ols by batched Cholesky and two triangular solves; iv as 2SLS by
    two batched Cholesky factorisations (stage 1 on [1, z], stage 2 on [1, xhat], written through the
    Grams); each ratio's block padded to full size with an identity block, so every solve stage is
    one batched call over networks x ratios;
    lasso by batched FISTA with gradient-restart on the Gram, step 1 / L with L = min(max row sum,
    trace) of the Gram (an upper bound of its largest eigenvalue), scikit-learn's objective
    1/(2(T-1)) ||y - X w||^2 + alpha ||w||_1 and scikit-learn's own stopping rule (duality gap <
    tol * ||y||^2, tol = 1e-4, the gap as cd_fast's Gram solver computes it), checked every 10
    iterations, all targets of all networks of a batch solved at once;
  - scores on the device, one transfer of B x ratios x 4 numbers per batch.
Timing: a warm-up on the same shapes (one chunk of time, a few lasso iterations) compiles
everything first; compile_seconds is that warm-up, seconds_total and phase_seconds are the work
only (every phase ends with block_until_ready).

Same command line and JSON output as vectorized_numpy.py (the harness parses both the same way),
plus: device, compile_seconds, precision, batch, lasso statistics.

Usage: python3 bench/peers/jax_peer.py --n 100 --timesteps 5000 --networks 16 \\
           --eta 2 --ratios 1,0.8,0.6,0.4,0.2 [--batch 0] [--json OUT] [--device auto|cpu|gpu]
"""
import argparse
import json
import math
import os
import platform
import sys
import time

PHASES = ["generate", "simulate", "correlation", "lasso", "ols", "iv", "scores"]
ESTIMATORS = ["correlation", "lasso", "ols", "iv"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--timesteps", type=int, default=5000)
    ap.add_argument("--networks", type=int, default=16)
    ap.add_argument("--batch", type=int, default=0, help="networks per batch (0: as many as fit, at most --max-batch)")
    ap.add_argument("--max-batch", type=int, default=4096)
    ap.add_argument("--eta", type=float, default=2.0)
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--ratios", default="1,0.8,0.6,0.4,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    ap.add_argument("--sim-dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--chunk", type=int, default=256, help="time steps per statistics update")
    ap.add_argument("--unroll", type=int, default=8, help="lax.scan unroll of the time loop")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=20000, help="FISTA iterations at most")
    ap.add_argument("--memory-fraction", type=float, default=0.5,
                    help="share of the device memory the automatic batch may plan for")
    return ap.parse_args()


def make_programs(n, ks, B, L, eta, p, sim_dtype, alpha, tol, m, unroll=8):
    """The jitted-to-be functions of one batch shape (plain functions; main() jits them)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    import jax.scipy.linalg as jsl

    f64 = jnp.float64
    sd = jnp.float32 if sim_dtype == "float32" else jnp.float64
    HIGHEST = lax.Precision.HIGHEST
    lam = alpha * m                             # scikit-learn's alpha, on the unnormalised objective
    CHECK = 10                                  # FISTA iterations between duality-gap checks
    d = 2 * n + 1

    # --- programs ---------------------------------------------------------------------------------
    def generate(key):
        A0 = jax.random.bernoulli(key, p, (B, n, n)).astype(f64)
        AtA = jnp.einsum("bki,bkj->bij", A0, A0, precision=HIGHEST)

        def cond(c):
            _, lam_old, lam_new, it = c
            return (it < 500) & jnp.any(jnp.abs(lam_new - lam_old) > 1e-14 * jnp.abs(lam_new))

        def body(c):
            v, _, lam_old, it = c
            w = jnp.einsum("bij,bj->bi", AtA, v, precision=HIGHEST)
            nw = jnp.linalg.norm(w, axis=1, keepdims=True)
            lam_new = jnp.sum(v * w, axis=1)                 # Rayleigh quotient, v has unit norm
            return jnp.where(nw > 0, w / jnp.where(nw > 0, nw, 1.0), v), lam_old, lam_new, it + 1

        v0 = jnp.full((B, n), 1.0 / math.sqrt(n), f64)
        _, _, top, _ = lax.while_loop(cond, body, (v0, jnp.full((B,), -1.0, f64), jnp.zeros((B,), f64), 0))
        s = jnp.sqrt(jnp.maximum(top, 0.0))
        A = jnp.where(s[:, None, None] > 0, A0 / (1.01 * jnp.where(s > 0, s, 1.0))[:, None, None], 0.0)
        return A

    lo, hi = float(jnp.finfo(sd).tiny), 1.0 - float(jnp.finfo(sd).eps) / 2

    def advance(As, carry, c, zn, e, transitions):
        """One chunk: L steps from the carried state with the chunk's draws, then the statistics."""
        x, z, M, N, yy, xx, sat = carry

        def step(x, inp):
            zt1, et = inp
            xn = jax.nn.sigmoid(jnp.einsum("bij,bj->bi", As, x, precision=HIGHEST) + eta * zt1 + et)
            return xn, xn

        xl, Xn = lax.scan(step, x, (zn, e), unroll=unroll)         # Xn[l] = x[cL + l + 1]
        valid = ((c * L + jnp.arange(L)) < transitions).astype(f64)[:, None, None]
        Xc = jnp.concatenate([x[None], Xn[:-1]]).astype(f64)       # x[t]
        Zc = jnp.concatenate([z[None], zn[:-1]]).astype(f64)       # z[t]
        X1 = Xn.astype(f64)                                        # x[t+1]
        sat = sat + jnp.sum(((X1 <= 0) | (X1 >= 1)) * valid)
        Xcl = jnp.clip(X1, lo, hi)
        Y = jnp.log(Xcl) - jnp.log1p(-Xcl)                         # logit(x[t+1])
        U = jnp.concatenate([jnp.broadcast_to(valid, (L, B, 1)), Zc * valid, Xc * valid], axis=-1)
        V = jnp.concatenate([X1, Y], axis=-1)
        M = M + jnp.einsum("lbi,lbj->bij", U, U, precision=HIGHEST)
        N = N + jnp.einsum("lbi,lbj->bij", U, V, precision=HIGHEST)
        yy = yy + jnp.sum(valid * Y * Y, axis=0)
        xx = xx + jnp.sum(valid * X1 * X1, axis=0)
        return xl, zn[-1], M, N, yy, xx, sat

    def initial(z0):
        return (jnp.zeros((B, n), sd), z0, jnp.zeros((B, d, d), f64), jnp.zeros((B, d, 2 * n), f64),
                jnp.zeros((B, n), f64), jnp.zeros((B, n), f64), jnp.zeros((), f64))

    def simulate(key, A, chunks, transitions):
        As = A.astype(sd)
        kz0, kloop = jax.random.split(key)
        z0 = jax.random.bernoulli(kz0, 0.5, (B, n)).astype(sd)

        def chunk(c, carry):
            kz, ke = jax.random.split(jax.random.fold_in(kloop, c))
            zn = jax.random.bernoulli(kz, 0.5, (L, B, n)).astype(sd)     # z[t+1] of the chunk's steps
            e = jax.random.normal(ke, (L, B, n), sd)                     # eps[t]
            return advance(As, carry, c, zn, e, transitions)

        _, _, M, N, yy, xx, sat = lax.fori_loop(0, chunks, chunk, initial(z0))
        return M, N, yy, xx, sat

    def simulate_from(A, z0, Zn, E, transitions):
        """The same with given draws (chunks, L, B, n): for checking the statistics against numpy."""
        As = A.astype(sd)
        _, _, M, N, yy, xx, sat = lax.fori_loop(
            0, Zn.shape[0], lambda c, carry: advance(As, carry, c, Zn[c].astype(sd), E[c].astype(sd), transitions),
            initial(z0.astype(sd)))
        return M, N, yy, xx, sat

    X0 = 1 + n                                  # index of x_0 in u = [1, z, x]

    def correlation(M, N, xx):
        cnt = M[:, 0, 0][:, None]
        sx = M[:, 0, X0:X0 + n]                                       # sum x_j[t]
        sxx = jnp.diagonal(M, axis1=1, axis2=2)[:, X0:X0 + n]
        s1 = N[:, 0, :n]                                              # sum x_i[t+1]
        cross = N[:, X0:X0 + n, :n]                                   # [b, j, i] sum x_j[t] x_i[t+1]
        cov = cross - sx[:, :, None] * s1[:, None, :] / cnt[:, :, None]
        var_src = sxx - sx * sx / cnt
        var_tgt = xx - s1 * s1 / cnt
        R = cov / jnp.sqrt(var_src[:, :, None] * var_tgt[:, None, :])
        return jnp.swapaxes(R, 1, 2)                                  # [b, target i, source j]

    # Every ratio is a leading block; the solves pad each block to full size (unobserved rows and
    # columns replaced by the identity, which leaves the observed block's solution unchanged), so
    # each stage is one batched factorisation over networks x ratios rather than one per ratio.
    fmask = jnp.stack([(jnp.arange(n) < k).astype(f64) for k in ks])          # [ratio, neuron]
    zmask = jnp.concatenate([jnp.ones((len(ks), 1), f64), fmask], axis=1)    # [ratio, 1 + neuron]

    def pad(G, mask):                           # G [b, d, d] -> [b, ratio, d, d]
        mm = mask[:, :, None] * mask[:, None, :]
        return G[:, None] * mm + (1.0 - mask)[:, :, None] * jnp.eye(G.shape[-1], dtype=f64)

    def cho_solve(Lc, rhs):
        y = jsl.solve_triangular(Lc, rhs, lower=True)
        return jsl.solve_triangular(Lc, y, lower=True, trans=1)

    def ols(M, N):
        G = pad(M[:, X0:X0 + n, X0:X0 + n], fmask)
        C = N[:, None, X0:X0 + n, n:2 * n] * fmask[:, :, None]               # features x targets
        W = cho_solve(jnp.linalg.cholesky(G), C)
        return jnp.swapaxes(W, 2, 3)                                          # [b, ratio, target, source]

    def iv(M, N):
        Gzz = pad(M[:, :n + 1, :n + 1], zmask)                                # [1, z_1..z_k]
        Gzx = jnp.concatenate([M[:, :n + 1, :1], M[:, :n + 1, X0:X0 + n]], axis=2)   # vs [1, x_1..x_k]
        Gzx = Gzx[:, None] * zmask[:, :, None] * zmask[:, None, :]
        Gzy = N[:, None, :n + 1, n:2 * n] * zmask[:, :, None]
        Lz = jnp.linalg.cholesky(Gzz)
        Pr = jsl.solve_triangular(Lz, jnp.concatenate([Gzx, Gzy], axis=3), lower=True)
        P, r = Pr[..., :n + 1], Pr[..., n + 1:]
        S = jnp.einsum("brki,brkj->brij", P, P, precision=HIGHEST)           # xhat^T xhat
        S = S + (1.0 - zmask)[:, :, None] * jnp.eye(n + 1, dtype=f64)
        rhs = jnp.einsum("brki,brkj->brij", P, r, precision=HIGHEST)         # xhat^T y
        beta = cho_solve(jnp.linalg.cholesky(S), rhs)
        return jnp.swapaxes(beta[:, :, 1:, :], 2, 3)

    def fista(H, Q, yy, max_iter):
        """min_w 0.5 w^T H w - q^T w + lam |w|_1 per column of Q (scikit-learn's Lasso times T-1)."""
        Lc = jnp.minimum(jnp.max(jnp.sum(jnp.abs(H), axis=2), axis=1), jnp.trace(H, axis1=1, axis2=2))
        step = (1.0 / Lc)[:, None, None]
        thr = lam * step

        def gap_of(w):
            Hw = jnp.matmul(H, w, precision=HIGHEST)
            dual = jnp.max(jnp.abs(Q - Hw), axis=1)
            qw = jnp.sum(w * Q, axis=1)
            R2 = yy - 2 * qw + jnp.sum(w * Hw, axis=1)
            const = jnp.where(dual > lam, lam / jnp.where(dual > 0, dual, 1.0), 1.0)
            gap = jnp.where(dual > lam, 0.5 * R2 * (1 + const * const), R2)
            return gap + lam * jnp.sum(jnp.abs(w), axis=1) - const * (yy - qw)

        def one(state, _):
            w, v, t = state
            g = jnp.matmul(H, v, precision=HIGHEST) - Q
            u = v - step * g
            wn = jnp.sign(u) * jnp.maximum(jnp.abs(u) - thr, 0.0)
            tn = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))
            restart = jnp.sum((v - wn) * (wn - w), axis=1, keepdims=True) > 0
            beta = jnp.where(restart, 0.0, (t - 1) / tn)
            tn = jnp.where(restart, 1.0, tn)
            return (wn, wn + beta * (wn - w), tn), None

        def cond(c):
            return (c[3] < max_iter) & jnp.logical_not(c[4])

        def body(c):
            w, v, t, it, _ = c
            (w, v, t), _ = lax.scan(one, (w, v, t), None, length=CHECK)
            return w, v, t, it + CHECK, jnp.all(gap_of(w) < tol * yy)

        z = jnp.zeros_like(Q)
        t0 = jnp.ones((Q.shape[0], 1, Q.shape[2]), f64)
        w, _, _, it, _ = lax.while_loop(cond, body, (z, z, t0, 0, False))
        unconverged = jnp.sum(jnp.logical_not(gap_of(w) < tol * yy))
        return w, it, unconverged

    def lasso(M, N, yy, max_iter):
        out, its, unconv = [], [], []
        for k in ks:
            w, it, u = fista(M[:, X0:X0 + k, X0:X0 + k], N[:, X0:X0 + k, n:n + k], yy[:, :k], max_iter)
            out.append(jnp.swapaxes(w, 1, 2))
            its.append(it)
            unconv.append(u)
        return out, jnp.stack(its), jnp.stack(unconv)

    def pearson(Ak, V):
        a_ = Ak.reshape(Ak.shape[0], -1)
        v_ = V.reshape(V.shape[0], -1)
        a_ = a_ - a_.mean(axis=1, keepdims=True)
        v_ = v_ - v_.mean(axis=1, keepdims=True)
        den = jnp.sqrt(jnp.sum(a_ * a_, axis=1) * jnp.sum(v_ * v_, axis=1))
        return jnp.where(den > 0, jnp.sum(a_ * v_, axis=1) / jnp.where(den > 0, den, 1.0), jnp.nan)

    def scores(A, R, Vl, Vo, Vi):
        rows = []
        for r, k in enumerate(ks):
            Ak = A[:, :k, :k]
            rows.append(jnp.stack([pearson(Ak, R[:, :k, :k]), pearson(Ak, Vl[r]), pearson(Ak, Vo[:, r, :k, :k]),
                                   pearson(Ak, Vi[:, r, :k, :k])], axis=1))
        return jnp.stack(rows, axis=1)          # [b, ratio, estimator]

    return dict(generate=generate, simulate=simulate, simulate_from=simulate_from, correlation=correlation, ols=ols, iv=iv, lasso=lasso,
                scores=scores, CHECK=CHECK)


def main():
    a = parse_args()
    if a.device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    # CPU only (no effect on the GPU path): jaxlib 0.10's batched LAPACK kernels (Cholesky, triangular
    # solve) wait for XLA's worker threads, and two of them running at once deadlocked a 2-core
    # machine now and then. make_programs arranges every solve stage as one chain of LAPACK calls;
    # OpenBLAS (which jaxlib's CPU LAPACK calls into) is kept single-threaded as well.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    backend = jax.default_backend()
    if a.device == "gpu" and backend not in ("gpu", "cuda", "rocm"):
        print(f"jax_peer: --device gpu but jax's backend is {backend}", file=sys.stderr)
        sys.exit(2)
    dev = jax.devices()[0]
    on_gpu = dev.platform in ("gpu", "cuda", "rocm")
    device_name = f"gpu: {dev.device_kind}" if on_gpu else f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"

    n, T, eta, p = a.n, a.timesteps, a.eta, a.p
    ratios = [float(r) for r in a.ratios.split(",")]
    ks = [int(min(max(int(n * r), 1), n)) for r in ratios]
    m = T - 1                                   # transitions
    L = max(1, min(a.chunk, m))
    nchunks = -(-m // L)
    sd_bytes = 4 if a.sim_dtype == "float32" else 8

    # --- batch size: every batch has the same shape (the last one padded with extra networks) ---
    d = 2 * n + 1
    # bytes per network at the peak: A and the Grams, the padded solves (about 12 arrays per ratio),
    # the lasso's arrays, and one chunk (draws, trajectory, its float64 copies, u, v and transposes).
    # Measured on the CPU at n = 100, L = 256: 4.9 MB (jax) and 7.5 MB (torch); this gives 9.4 MB.
    per_network = (8 * (3 * d * d + 12 * len(ks) * (n + 1) ** 2 + 10 * n * n)
                   + L * (3 * n * sd_bytes + 8 * (4 * n + 2 * (d + 2 * n))))
    if on_gpu:
        stats = dev.memory_stats() or {}
        capacity = stats.get("bytes_limit", 16 << 30)
    else:
        capacity = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    fit = max(1, int(a.memory_fraction * capacity // per_network))
    want = a.batch if a.batch > 0 else min(fit, a.max_batch)
    want = max(1, min(want, a.networks))
    nbatches = -(-a.networks // want)
    B = -(-a.networks // nbatches)

    P = make_programs(n, ks, B, L, eta, p, a.sim_dtype, a.alpha, a.tol, m, a.unroll)
    CHECK = P["CHECK"]
    j_generate, j_simulate, j_corr = jax.jit(P["generate"]), jax.jit(P["simulate"]), jax.jit(P["correlation"])
    j_lasso, j_ols, j_iv, j_scores = jax.jit(P["lasso"]), jax.jit(P["ols"]), jax.jit(P["iv"]), jax.jit(P["scores"])

    def run_batch(key, chunks, transitions, max_iter, timers):
        kA, ks_ = jax.random.split(key)

        def timed(phase, fn, *args):
            t0 = time.perf_counter()
            out = jax.block_until_ready(fn(*args))
            if timers is not None:
                timers[phase] += time.perf_counter() - t0
            return out

        A = timed("generate", j_generate, kA)
        M, N, yy, xx, sat = timed("simulate", j_simulate, ks_, A, jnp.int32(chunks), jnp.int32(transitions))
        R = timed("correlation", j_corr, M, N, xx)
        Vl, its, unconv = timed("lasso", j_lasso, M, N, yy, jnp.int32(max_iter))
        Vo = timed("ols", j_ols, M, N)
        Vi = timed("iv", j_iv, M, N)
        t0 = time.perf_counter()
        S = np.asarray(j_scores(A, R, Vl, Vo, Vi))
        its, unconv, sat = np.asarray(its), np.asarray(unconv), float(sat)
        if timers is not None:
            timers["scores"] += time.perf_counter() - t0
        return S, its, unconv, sat

    root = jax.random.key(a.seed)
    # Warm-up: the same shapes, one chunk of time, one block of lasso iterations: compiles everything.
    t0 = time.perf_counter()
    run_batch(jax.random.fold_in(root, 1 << 30), 1, min(m, L), CHECK, None)
    compile_seconds = time.perf_counter() - t0
    print(f"jax_peer: {device_name}, batch {B} x {nbatches}, compile + warm-up {compile_seconds:.2f} s", file=sys.stderr)

    timers = dict.fromkeys(PHASES, 0.0)
    results, lasso_iters, lasso_unconv, saturated = [], [], 0, 0.0
    start = time.perf_counter()
    for bi in range(nbatches):
        S, its, unconv, sat = run_batch(jax.random.fold_in(root, bi), nchunks, m, a.max_iter, timers)
        lasso_iters.append(its.tolist())
        lasso_unconv += int(unconv.sum())
        saturated += sat
        for b in range(B):
            net = bi * B + b
            if net >= a.networks:
                break                            # padding of the last batch
            for r, ratio in enumerate(ratios):
                for e, name in enumerate(ESTIMATORS):
                    results.append({"network": net, "observed_ratio": ratio, "estimator": name,
                                    "corr_with_truth": float(S[b, r, e])})
    total = time.perf_counter() - start

    result = {"peer": "jax", "n": n, "timesteps": T, "networks": a.networks, "eta": eta,
              "seconds_total": total, "seconds_per_network": total / a.networks,
              "compile_seconds": compile_seconds, "phase_seconds": timers, "scores": results,
              "device": device_name, "batch": B, "batches": nbatches,
              "networks_computed": B * nbatches, "chunk": L,
              "precision": {"simulation": a.sim_dtype, "statistics_and_solves": "float64"},
              "lasso": {"algorithm": "FISTA with gradient restart on the Gram, step 1/min(max row sum, trace)",
                        "stopping": f"duality gap < {a.tol} * ||y||^2 (scikit-learn's rule), checked every {CHECK}",
                        "alpha": a.alpha, "max_iter": a.max_iter,
                        "iterations_per_batch_and_ratio": lasso_iters, "unconverged_targets": lasso_unconv},
              "saturated_sigmoids": saturated,
              "versions": {"python": sys.version.split()[0], "jax": jax.__version__, "numpy": np.__version__}}
    text = json.dumps(result, indent=1, allow_nan=True)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
