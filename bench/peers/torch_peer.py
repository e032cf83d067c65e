#!/usr/bin/env python3
"""Peer: the same workload as causalsweep written the way a competent PyTorch user would, for the GPU.

The workload is the one of bench/peers/vectorized_numpy.py and SPEC.md (rate network
x[t+1] = sigmoid(A x[t] + eta z[t+1] + eps[t]), x[0] = 0, z ~ Bernoulli(0.5), A 10% connected scaled
by 1.01 x its largest singular value; correlation, lasso, ols and iv on the first k observed neurons
for every observed ratio; corr_with_truth on the observed block). How it is done here (the same
algorithms as jax_peer.py, in eager PyTorch):

  - networks in batches of B (all batches the same shape); A drawn with torch.rand on the device
    (torch's Philox generator, seeded), its largest singular value by power iteration on A0^T A0;
  - simulation: a Python loop over time steps, each one torch.baddbmm (A x + eta z + eps) and one
    torch.sigmoid into a chunk buffer of L steps; the chunk's draws are made in two calls before
    it. On CUDA the L steps of a chunk are captured once in a CUDA graph and replayed (no per-step
    launch overhead; --no-cuda-graph turns it off, and it falls back to eager by itself if capture
    fails). After each chunk the sufficient statistics are accumulated with two batched matrix
    products (M = sum u u^T, N = sum u v^T, u[t] = [1, z[t], x[t]], v[t] = [x[t+1], logit(x[t+1])],
    plus sums of x[t+1]^2 and logit(x[t+1])^2) and the chunk is dropped: nothing of size T is stored;
  - simulation precision: --sim-dtype (default float32; TF32 stays off, PyTorch's default for
    matmuls); statistics, solves and scores always float64; the float32 trajectory is cast to
    float64 before the Gram products;
  - estimators from leading sub-blocks of the same statistics: correlation from the moments; ols by
    batched Cholesky (torch.linalg.cholesky_ex + two batched triangular solves); iv as 2SLS through the Grams
    with two batched Cholesky factorisations; the ratios padded to full size with identity blocks so
    each stage is one batched call over networks x ratios; lasso by batched FISTA with gradient
    restart on the Gram (step 1 / min(max row sum, trace)), scikit-learn's objective and stopping
    rule (duality gap < tol * ||y||^2 as cd_fast's Gram solver computes it, tol = 1e-4), checked
    every 10 iterations, all targets of all networks of a batch at once;
  - scores on the device, one transfer of B x ratios x 4 numbers per batch.
Timing: a warm-up on the same shapes (one chunk of time, a few lasso iterations; CUDA graph capture,
cuBLAS / cuSOLVER initialisation) runs first and is reported as compile_seconds; seconds_total and
phase_seconds are the work only (each phase ends with a device synchronisation).

Same command line and JSON output as vectorized_numpy.py (the harness parses both the same way),
plus: device, compile_seconds, precision, batch, lasso statistics.

Usage: python3 bench/peers/torch_peer.py --n 100 --timesteps 5000 --networks 16 \\
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
CHECK = 10                                      # FISTA iterations between duality-gap checks


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
    ap.add_argument("--no-cuda-graph", action="store_true", help="launch every step eagerly on CUDA")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: PyTorch's default)")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=20000, help="FISTA iterations at most")
    ap.add_argument("--memory-fraction", type=float, default=0.5,
                    help="share of the device memory the automatic batch may plan for")
    return ap.parse_args()


class Programs:
    """All work of one batch shape: B networks of n neurons, chunks of L steps."""

    def __init__(self, torch, dev, n, ks, B, L, eta, p, sim_dtype, alpha, tol, m, cuda_graph):
        self.torch, self.dev, self.n, self.ks, self.B, self.L = torch, dev, n, ks, B, L
        self.eta, self.p, self.alpha, self.tol, self.m = eta, p, alpha, tol, m
        self.sd = torch.float32 if sim_dtype == "float32" else torch.float64
        self.f64 = torch.float64
        self.lam = alpha * m                    # scikit-learn's alpha on the unnormalised objective
        fin = torch.finfo(self.sd)
        self.lo, self.hi = fin.tiny, 1.0 - fin.eps / 2
        self.d = 2 * n + 1
        self.X0 = 1 + n
        f = torch.stack([(torch.arange(n, device=dev) < k).to(self.f64) for k in ks])   # [ratio, neuron]
        self.fmask = f
        self.zmask = torch.cat([torch.ones(len(ks), 1, dtype=self.f64, device=dev), f], dim=1)
        # static buffers of the time loop (a CUDA graph replays on fixed addresses)
        self.As = torch.zeros(B, n, n, dtype=self.sd, device=dev)
        self.drive = torch.zeros(L, B, n, dtype=self.sd, device=dev)         # eta z[t+1] + eps[t]
        self.buf = torch.zeros(L + 1, B, n, dtype=self.sd, device=dev)       # x[cL] .. x[cL + L]
        self.tmp = torch.zeros(B, n, 1, dtype=self.sd, device=dev)
        self.graph = None
        self.graph_note = "eager (not CUDA)" if dev.type != "cuda" else "eager (--no-cuda-graph)"
        self.want_graph = cuda_graph and dev.type == "cuda"

    # --- generation -----------------------------------------------------------------------------
    def generate(self, g):
        torch, B, n = self.torch, self.B, self.n
        A0 = (torch.rand(B, n, n, generator=g, device=self.dev, dtype=self.f64) < self.p).to(self.f64)
        AtA = A0.transpose(1, 2) @ A0
        v = torch.full((B, n, 1), 1.0 / math.sqrt(n), dtype=self.f64, device=self.dev)
        top = torch.zeros(B, dtype=self.f64, device=self.dev)
        for it in range(500):
            w = AtA @ v
            new = (v * w).sum(dim=(1, 2))                                    # Rayleigh quotient
            nw = w.norm(dim=1, keepdim=True)
            v = torch.where(nw > 0, w / torch.where(nw > 0, nw, torch.ones_like(nw)), v)
            if it % 16 == 15 and bool(((new - top).abs() <= 1e-14 * new.abs()).all()):
                top = new
                break
            top = new
        s = top.clamp_min(0).sqrt()
        scale = torch.where(s > 0, 1.0 / (1.01 * torch.where(s > 0, s, torch.ones_like(s))), torch.zeros_like(s))
        return A0 * scale[:, None, None]

    # --- simulation -----------------------------------------------------------------------------
    def _steps(self):
        torch, B, n = self.torch, self.B, self.n
        for l in range(self.L):
            torch.baddbmm(self.drive[l].unsqueeze(-1), self.As, self.buf[l].unsqueeze(-1), out=self.tmp)
            torch.sigmoid(self.tmp.view(B, n), out=self.buf[l + 1])

    def _capture(self):
        torch = self.torch
        try:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                self._steps()                                               # warm-up before capture
            torch.cuda.current_stream().wait_stream(s)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._steps()
            torch.cuda.synchronize()
            self.graph = graph
            self.graph_note = f"CUDA graph of {self.L} steps, replayed per chunk"
        except Exception as e:                                              # fall back to eager
            self.graph = None
            self.graph_note = f"eager (CUDA graph capture failed: {type(e).__name__}: {e})"
        self.want_graph = False

    def simulate(self, g, A, chunks, transitions, given=None):
        """given: (z0 [B, n], Zn [chunks, L, B, n], E [chunks, L, B, n]) draws, for checking against numpy."""
        torch, B, n, L, d, f64 = self.torch, self.B, self.n, self.L, self.d, self.f64
        if self.want_graph:
            self._capture()
        self.As.copy_(A)
        M = torch.zeros(B, d, d, dtype=f64, device=self.dev)
        N = torch.zeros(B, d, 2 * n, dtype=f64, device=self.dev)
        yy = torch.zeros(B, n, dtype=f64, device=self.dev)
        xx = torch.zeros(B, n, dtype=f64, device=self.dev)
        sat = torch.zeros((), dtype=f64, device=self.dev)
        if given is None:
            z = (torch.rand(B, n, generator=g, device=self.dev, dtype=self.sd) < 0.5).to(self.sd)   # z[0]
        else:
            z = given[0].to(self.dev, self.sd)
        self.buf[0].zero_()                                                 # x[0] = 0
        ones = torch.ones(L, B, 1, dtype=f64, device=self.dev)
        for c in range(chunks):
            if given is None:
                zn = (torch.rand(L, B, n, generator=g, device=self.dev, dtype=self.sd) < 0.5).to(self.sd)  # z[t+1]
                eps = torch.randn(L, B, n, generator=g, device=self.dev, dtype=self.sd)                  # eps[t]
            else:
                zn, eps = given[1][c].to(self.dev, self.sd), given[2][c].to(self.dev, self.sd)
            torch.add(eps, zn, alpha=self.eta, out=self.drive)
            if c > 0:
                self.buf[0].copy_(self.buf[L])
            if self.graph is not None:
                self.graph.replay()
            elif self.dev.type == "cpu":
                # Per-step ops are tiny: on the CPU intra-op threads only add barrier waits (and stall
                # badly on a busy machine), so the time loop runs on one thread, the rest on all.
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                self._steps()
                torch.set_num_threads(threads)
            else:
                self._steps()
            valid = ((c * L + torch.arange(L, device=self.dev)) < transitions).to(f64)[:, None, None]
            Xc = self.buf[:L].to(f64)                                       # x[t]
            X1 = self.buf[1:].to(f64)                                       # x[t+1]
            Zc = torch.cat([z[None], zn[:-1]]).to(f64)                      # z[t]
            z = zn[-1]
            sat += (((X1 <= 0) | (X1 >= 1)) * valid).sum()
            Xcl = X1.clamp(self.lo, self.hi)
            Y = torch.log(Xcl) - torch.log1p(-Xcl)                          # logit(x[t+1])
            U = torch.cat([valid.expand(L, B, 1) * ones, Zc * valid, Xc * valid], dim=2).transpose(0, 1)  # [b, l, .]
            V = torch.cat([X1, Y], dim=2).transpose(0, 1)
            M.baddbmm_(U.transpose(1, 2), U)
            N.baddbmm_(U.transpose(1, 2), V)
            yy += (valid * Y * Y).sum(0)
            xx += (valid * X1 * X1).sum(0)
        return M, N, yy, xx, sat

    # --- estimators -----------------------------------------------------------------------------
    def correlation(self, M, N, xx):
        n, X0 = self.n, self.X0
        cnt = M[:, 0, 0][:, None]
        sx = M[:, 0, X0:X0 + n]
        sxx = torch_diag(M)[:, X0:X0 + n]
        s1 = N[:, 0, :n]
        cross = N[:, X0:X0 + n, :n]                                         # [b, j, i]
        cov = cross - sx[:, :, None] * s1[:, None, :] / cnt[:, :, None]
        var_src = sxx - sx * sx / cnt
        var_tgt = xx - s1 * s1 / cnt
        return (cov / (var_src[:, :, None] * var_tgt[:, None, :]).sqrt()).transpose(1, 2)

    def _pad(self, G, mask):
        eye = self.torch.eye(G.shape[-1], dtype=self.f64, device=self.dev)
        return G[:, None] * (mask[:, :, None] * mask[:, None, :]) + (1.0 - mask)[:, :, None] * eye

    def _chol(self, G):
        """Batched Cholesky without raising on a singular system (its factor becomes NaN)."""
        Lc, info = self.torch.linalg.cholesky_ex(G)
        return torch_where_nan(Lc, info != 0)

    def _cho_solve(self, Lc, rhs):
        # two batched triangular solves (cuBLAS trsm batched on CUDA)
        st = self.torch.linalg.solve_triangular
        return st(Lc.transpose(-2, -1), st(Lc, rhs, upper=False), upper=True)

    def ols(self, M, N):
        n, X0 = self.n, self.X0
        G = self._pad(M[:, X0:X0 + n, X0:X0 + n], self.fmask)
        C = N[:, None, X0:X0 + n, n:2 * n] * self.fmask[:, :, None]
        W = self._cho_solve(self._chol(G), C)
        return W.transpose(2, 3)                                            # [b, ratio, target, source]

    def iv(self, M, N):
        torch, n, X0, zm = self.torch, self.n, self.X0, self.zmask
        Gzz = self._pad(M[:, :n + 1, :n + 1], zm)
        Gzx = torch.cat([M[:, :n + 1, :1], M[:, :n + 1, X0:X0 + n]], dim=2)
        Gzx = Gzx[:, None] * (zm[:, :, None] * zm[:, None, :])
        Gzy = N[:, None, :n + 1, n:2 * n] * zm[:, :, None]
        Lz = self._chol(Gzz)
        Pr = torch.linalg.solve_triangular(Lz, torch.cat([Gzx, Gzy], dim=3), upper=False)
        P, r = Pr[..., :n + 1], Pr[..., n + 1:]
        S = P.transpose(2, 3) @ P + (1.0 - zm)[:, :, None] * torch.eye(n + 1, dtype=self.f64, device=self.dev)
        beta = self._cho_solve(self._chol(S), P.transpose(2, 3) @ r)
        return beta[:, :, 1:, :].transpose(2, 3)

    def _fista(self, H, Q, yy, max_iter):
        torch, lam, tol = self.torch, self.lam, self.tol
        Lc = torch.minimum(H.abs().sum(2).amax(1), torch.diagonal(H, dim1=1, dim2=2).sum(1))
        step = (1.0 / Lc)[:, None, None]
        thr = lam * step

        def gap_of(w):
            Hw = H @ w
            dual = (Q - Hw).abs().amax(1)
            qw = (w * Q).sum(1)
            R2 = yy - 2 * qw + (w * Hw).sum(1)
            big = dual > lam
            const = torch.where(big, lam / torch.where(dual > 0, dual, torch.ones_like(dual)), torch.ones_like(dual))
            gap = torch.where(big, 0.5 * R2 * (1 + const * const), R2)
            return gap + lam * w.abs().sum(1) - const * (yy - qw)

        w = torch.zeros_like(Q)
        v = torch.zeros_like(Q)
        t = torch.ones(Q.shape[0], 1, Q.shape[2], dtype=self.f64, device=self.dev)
        it = 0
        while it < max_iter:
            for _ in range(CHECK):
                u = v - step * (H @ v - Q)
                wn = torch.sign(u) * (u.abs() - thr).clamp_min(0)
                tn = 0.5 * (1 + torch.sqrt(1 + 4 * t * t))
                restart = ((v - wn) * (wn - w)).sum(1, keepdim=True) > 0
                beta = torch.where(restart, torch.zeros_like(t), (t - 1) / tn)
                t = torch.where(restart, torch.ones_like(tn), tn)
                v = wn + beta * (wn - w)
                w = wn
            it += CHECK
            if bool((gap_of(w) < tol * yy).all()):
                break
        unconverged = int((~(gap_of(w) < tol * yy)).sum())
        return w, it, unconverged

    def lasso(self, M, N, yy, max_iter):
        n, X0 = self.n, self.X0
        out, its, unconv = [], [], 0
        for k in self.ks:
            w, it, u = self._fista(M[:, X0:X0 + k, X0:X0 + k], N[:, X0:X0 + k, n:n + k], yy[:, :k], max_iter)
            out.append(w.transpose(1, 2))
            its.append(it)
            unconv += u
        return out, its, unconv

    def scores(self, A, R, Vl, Vo, Vi):
        torch = self.torch

        def pearson(Ak, V):
            a_ = Ak.reshape(Ak.shape[0], -1)
            v_ = V.reshape(V.shape[0], -1)
            a_ = a_ - a_.mean(1, keepdim=True)
            v_ = v_ - v_.mean(1, keepdim=True)
            den = ((a_ * a_).sum(1) * (v_ * v_).sum(1)).sqrt()
            return torch.where(den > 0, (a_ * v_).sum(1) / torch.where(den > 0, den, torch.ones_like(den)),
                               torch.full_like(den, float("nan")))

        rows = []
        for r, k in enumerate(self.ks):
            Ak = A[:, :k, :k]
            rows.append(torch.stack([pearson(Ak, R[:, :k, :k]), pearson(Ak, Vl[r]),
                                     pearson(Ak, Vo[:, r, :k, :k]), pearson(Ak, Vi[:, r, :k, :k])], dim=1))
        return torch.stack(rows, dim=1)                                     # [b, ratio, estimator]


def torch_diag(M):
    return M.diagonal(dim1=1, dim2=2)


def torch_where_nan(Lc, bad):
    return Lc.masked_fill(bad[..., None, None], float("nan"))


def main():
    a = parse_args()
    import numpy as np
    import torch

    cuda = torch.cuda.is_available() and a.device != "cpu"
    if a.device == "gpu" and not cuda:
        print("torch_peer: --device gpu but torch sees no CUDA device", file=sys.stderr)
        sys.exit(2)
    dev = torch.device("cuda" if cuda else "cpu")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False                      # the default; stated
        device_name = f"gpu: {torch.cuda.get_device_name(dev)}"
    else:
        device_name = f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"

    n, T, eta, p = a.n, a.timesteps, a.eta, a.p
    ratios = [float(r) for r in a.ratios.split(",")]
    ks = [int(min(max(int(n * r), 1), n)) for r in ratios]
    m = T - 1
    L = max(1, min(a.chunk, m))
    nchunks = -(-m // L)
    sd_bytes = 4 if a.sim_dtype == "float32" else 8
    d = 2 * n + 1
    # bytes per network at the peak: A and the Grams, the padded solves (about 12 arrays per ratio),
    # the lasso's arrays, and one chunk (draws, trajectory, its float64 copies, u, v and transposes).
    # Measured on the CPU at n = 100, L = 256: 4.9 MB (jax) and 7.5 MB (torch); this gives 9.4 MB.
    per_network = (8 * (3 * d * d + 12 * len(ks) * (n + 1) ** 2 + 10 * n * n)
                   + L * (3 * n * sd_bytes + 8 * (4 * n + 2 * (d + 2 * n))))
    if cuda:
        free, _ = torch.cuda.mem_get_info(dev)
        capacity = free
    else:
        capacity = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    fit = max(1, int(a.memory_fraction * capacity // per_network))
    want = a.batch if a.batch > 0 else min(fit, a.max_batch)
    want = max(1, min(want, a.networks))
    nbatches = -(-a.networks // want)
    B = -(-a.networks // nbatches)

    P = Programs(torch, dev, n, ks, B, L, eta, p, a.sim_dtype, a.alpha, a.tol, m, not a.no_cuda_graph)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def run_batch(seed, chunks, transitions, max_iter, timers):
        g = torch.Generator(device=dev)
        g.manual_seed(seed)

        def timed(phase, fn, *args):
            sync()
            t0 = time.perf_counter()
            out = fn(*args)
            sync()
            if timers is not None:
                timers[phase] += time.perf_counter() - t0
            return out

        with torch.no_grad():
            A = timed("generate", P.generate, g)
            M, N, yy, xx, sat = timed("simulate", P.simulate, g, A, chunks, transitions)
            R = timed("correlation", P.correlation, M, N, xx)
            Vl, its, unconv = timed("lasso", P.lasso, M, N, yy, max_iter)
            Vo = timed("ols", P.ols, M, N)
            Vi = timed("iv", P.iv, M, N)
            t0 = time.perf_counter()
            S = P.scores(A, R, Vl, Vo, Vi).cpu().numpy()
            sat = float(sat)
            if timers is not None:
                timers["scores"] += time.perf_counter() - t0
        return S, its, unconv, sat

    # Warm-up: the same shapes, one chunk of time, one block of lasso iterations (and the CUDA graph).
    t0 = time.perf_counter()
    run_batch(a.seed * 1000003 + 999983, 1, min(m, L), CHECK, None)
    compile_seconds = time.perf_counter() - t0
    print(f"torch_peer: {device_name}, batch {B} x {nbatches}, {P.graph_note}, warm-up {compile_seconds:.2f} s",
          file=sys.stderr)

    timers = dict.fromkeys(PHASES, 0.0)
    results, lasso_iters, lasso_unconv, saturated = [], [], 0, 0.0
    start = time.perf_counter()
    for bi in range(nbatches):
        S, its, unconv, sat = run_batch(a.seed * 1000003 + bi, nchunks, m, a.max_iter, timers)
        lasso_iters.append(its)
        lasso_unconv += unconv
        saturated += sat
        for b in range(B):
            net = bi * B + b
            if net >= a.networks:
                break                                                       # padding of the last batch
            for r, ratio in enumerate(ratios):
                for e, name in enumerate(ESTIMATORS):
                    results.append({"network": net, "observed_ratio": ratio, "estimator": name,
                                    "corr_with_truth": float(S[b, r, e])})
    total = time.perf_counter() - start

    result = {"peer": "torch", "n": n, "timesteps": T, "networks": a.networks, "eta": eta,
              "seconds_total": total, "seconds_per_network": total / a.networks,
              "compile_seconds": compile_seconds, "phase_seconds": timers, "scores": results,
              "device": device_name, "batch": B, "batches": nbatches,
              "networks_computed": B * nbatches, "chunk": L, "time_loop": P.graph_note,
              "precision": {"simulation": a.sim_dtype, "statistics_and_solves": "float64"},
              "lasso": {"algorithm": "FISTA with gradient restart on the Gram, step 1/min(max row sum, trace)",
                        "stopping": f"duality gap < {a.tol} * ||y||^2 (scikit-learn's rule), checked every {CHECK}",
                        "alpha": a.alpha, "max_iter": a.max_iter,
                        "iterations_per_batch_and_ratio": lasso_iters, "unconverged_targets": lasso_unconv},
              "saturated_sigmoids": saturated,
              "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                           "cuda": torch.version.cuda, "numpy": np.__version__}}
    text = json.dumps(result, indent=1, allow_nan=True)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
