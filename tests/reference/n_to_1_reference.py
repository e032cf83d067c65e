#!/usr/bin/python3
"""Independent reference for the N-to-1 spiking experiment (N_TO_1_SPEC.md §4-§10).

Follows the specification literally with numpy: one conductance trace per connected input, arrays for
v, u and I_syn, the STA as a sum of window slices, np.random permutations of the inter-spike
intervals, and the evaluation with its left-endpoint AUC. It uses none of causalsweep's code and
draws its own inputs with numpy's default_rng (not causalsweep's Philox streams): the C++ test
(tests/test_n_to_1.cpp) reads the inputs from the CSV files and feeds them to the same steps.

A short, strongly driven simulation (2 s, 8 inputs at 50 Hz, 20 shuffles) keeps the fixtures small.
A few spikes are placed by hand to exercise the corner cases of the spec: a spike in sample 0, two
spikes of one input in one sample, spikes of two inputs in one sample, times at exactly k + 1/2
samples (rounded half to even), and a spike within dt/2 of the end (rounds to T: never applied).

    /usr/bin/python3 tests/reference/n_to_1_reference.py   # rewrites tests/reference/n_to_1/
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "n_to_1")
SEED = 20211105

PARAMS = dict(
    duration=2.0, timestep=1e-4, tau_syn=7e-3, spike_snr=40.0, window=0.05, inputs=8,
    p_inhibitory=0.25, p_connected=0.6, spike_rate=50.0, dg_exc=1e-9, dg_inh=4e-9,
    v_syn_exc=0.0, v_syn_inh=-0.065, shuffles=20, threshold=0.1,
    neuron=dict(C=100e-12, k=0.7e-6, v_r=-0.060, v_t=-0.040, v_peak=0.035, a=30.0, b=-2e-9, c=-0.050, d=100e-12),
)


def spike_trains(rng, p):
    trains = []
    for _ in range(p["inputs"]):
        intervals = rng.exponential(1 / p["spike_rate"], size=int(3 * p["spike_rate"] * p["duration"]))
        times = np.cumsum(intervals)
        assert times[-1] >= p["duration"]
        trains.append(times[times < p["duration"]])
    dt, T = p["timestep"], p["duration"]
    extra = {
        2: [0.3 * dt, 12.5 * dt],            # sample 0; 0.00125 / 1e-4 = 12.5 exactly -> 12
        3: [13.5 * dt, T - 0.3 * dt],        # 13.5 -> 14; the last rounds to T
        4: [trains[5][3]],                   # the same sample as a spike of input 5
    }
    extra[2].append(trains[2][5] + 0.01 * dt)  # a second spike of input 2 in the sample of its 6th
    for i, times in extra.items():
        trains[i] = np.sort(np.concatenate([trains[i], times]))
    return trains


def labels(p):
    n = p["inputs"]
    n_inh = round(p["p_inhibitory"] * n)      # Python's round: half to even
    n_exc = n - n_inh
    n_inh_conn = round(p["p_connected"] * n_inh)
    n_exc_conn = round(p["p_connected"] * n_exc)
    inhibitory = np.array([i < n_inh for i in range(n)])
    connected = np.array([i < n_inh_conn if i < n_inh else i - n_inh < n_exc_conn for i in range(n)])
    return inhibitory, connected


def conductance(indices, T, dt, tau, dg):
    g = np.empty(T)
    k = 0
    for i in range(T):
        g[i] = 0.0 if i == 0 else g[i - 1] + dt * (-g[i - 1] / tau)
        while k < len(indices) and indices[k] == i:
            g[i] += dg
            k += 1
    return g


def izhikevich(T, dt, g, e_syn, n):
    v, u, i_syn = np.empty(T), np.empty(T), np.zeros(T)
    spikes = []
    for t in range(T):
        if t == 0:
            v[t], u[t] = n["v_r"], 0.0
        else:
            dv = (n["k"] * (v[t - 1] - n["v_r"]) * (v[t - 1] - n["v_t"]) - u[t - 1] - i_syn[t - 1] + 0.0) / n["C"]
            du = n["a"] * (n["b"] * (v[t - 1] - n["v_r"]) - u[t - 1])
            v[t] = v[t - 1] + dt * dv
            u[t] = u[t - 1] + dt * du
            if v[t] >= n["v_peak"]:
                spikes.append(t)
                v[t - 1] = n["v_peak"]
                v[t] = n["c"]
                u[t] += n["d"]
        for s in range(len(g)):
            i_syn[t] += g[s][t] * (v[t] - e_syn[s])
    return v, i_syn, spikes


def sta(signal, indices, L):
    total = np.zeros(L)
    windows = 0
    for s in indices:
        if s + L < len(signal):
            total += signal[s:s + L]
            windows += 1
    return total / windows, windows


def evaluate(p_values, connected, inhibitory, threshold):
    def at(level):
        classified = np.array(p_values) <= level
        tp = classified & connected
        rate = lambda num, den: float(num) / den if den > 0 else float("nan")
        return dict(threshold=float(level),
                    fpr=rate(np.sum(classified & ~connected), np.sum(~connected)),
                    tpr=rate(np.sum(tp), np.sum(connected)),
                    tpr_exc=rate(np.sum(tp & ~inhibitory), np.sum(connected & ~inhibitory)),
                    tpr_inh=rate(np.sum(tp & inhibitory), np.sum(connected & inhibitory)))
    roc = [at(level) for level in np.unique([0.0] + list(p_values))]
    auc = dict(auc=0.0, auc_exc=0.0, auc_inh=0.0)
    for i in range(len(roc) - 1):
        dx = roc[i + 1]["fpr"] - roc[i]["fpr"]
        auc["auc"] += dx * roc[i]["tpr"]
        auc["auc_exc"] += dx * roc[i]["tpr_exc"]
        auc["auc_inh"] += dx * roc[i]["tpr_inh"]
    return dict(at_threshold=at(threshold), roc=roc, **auc)


def nan_to_none(x):
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [nan_to_none(v) for v in x]
    if isinstance(x, float) and np.isnan(x):
        return None
    return x


def auc_cases():
    """Hand-made p-values and labels (inhibitory, connected) for the AUC rule and empty denominators."""
    cases = []
    # The spec's 8/9: 21 connected at p = 0.01, one of 9 unconnected tied with them.
    inh = [True] * 6 + [False] * 24
    conn = [True] * 4 + [False] * 2 + [True] * 17 + [False] * 7
    p = [0.01 if c else 0.5 for c in conn]
    p[4] = 0.01
    cases.append(("tie_at_floor", p, inh, conn))
    p_sep = [0.01 if c else 0.2 + 0.01 * i for i, c in enumerate(conn)]
    cases.append(("separated", p_sep, inh, conn))
    cases.append(("all_connected", [0.01, 0.3, 0.02, 0.5], [True, False, False, False], [True] * 4))
    cases.append(("no_inhibitory", [0.01, 0.3, 0.02, 0.5], [False] * 4, [True, False, True, False]))
    cases.append(("none_connected", [0.01, 0.3, 0.02, 0.5], [True, False, False, False], [False] * 4))
    out = []
    for name, p_values, inhibitory, connected in cases:
        e = evaluate(p_values, np.array(connected), np.array(inhibitory), 0.05)
        out.append(dict(name=name, p_values=p_values, inhibitory=inhibitory, connected=connected, **e))
    return out


def main():
    p = PARAMS
    n = p["neuron"]
    rng = np.random.default_rng(SEED)
    dt = p["timestep"]
    T = int(round(p["duration"] / dt))
    L = int(round(p["window"] / dt))
    sigma = (n["v_peak"] - n["v_r"]) / p["spike_snr"]

    trains = spike_trains(rng, p)
    indices = [np.round(times / dt).astype(np.int64) for times in trains]
    inhibitory, connected = labels(p)
    g, e_syn = [], []
    for i in range(p["inputs"]):
        if connected[i]:
            dg = p["dg_inh"] if inhibitory[i] else p["dg_exc"]
            g.append(conductance(indices[i], T, dt, p["tau_syn"], dg))
            e_syn.append(p["v_syn_inh"] if inhibitory[i] else p["v_syn_exc"])
    v, i_syn, out_spikes = izhikevich(T, dt, g, e_syn, n)
    conn_idx = [i for i in range(p["inputs"]) if connected[i]]
    g_exc = np.zeros(T)
    g_inh = np.zeros(T)
    for s, i in enumerate(conn_idx):
        if inhibitory[i]:
            g_inh += g[s]
        else:
            g_exc += g[s]

    noise = np.round(rng.standard_normal(T), 6)  # 6 decimals: the CSV holds them exactly
    signal = v + sigma * noise

    tests, permutations, real_stas = [], [], {}
    for i in range(p["inputs"]):
        intervals = np.diff(trains[i], prepend=0.0)
        real, windows = sta(signal, indices[i], L)
        height = float(np.max(real) - np.min(real))
        if i in (0, 2):
            real_stas[str(i)] = real.tolist()
        surrogate_heights = []
        for s in range(p["shuffles"]):
            perm = rng.permutation(len(intervals))
            permutations.append(perm)
            times = np.cumsum(intervals[perm])
            avg, _ = sta(signal, np.round(times / dt).astype(np.int64), L)
            surrogate_heights.append(float(np.max(avg) - np.min(avg)))
        hs = np.array(surrogate_heights)
        # K must not hinge on the last bits: every surrogate height clearly apart from the real one.
        assert np.min(np.abs(hs - height)) > 1e-9 * height, (i, np.min(np.abs(hs - height)))
        k = int(np.sum(hs > height))
        tests.append(dict(spikes=len(trains[i]), windows=windows, height=height, surrogate_heights=surrogate_heights,
                          exceed=k, p_value=(1 / p["shuffles"]) if k == 0 else k / p["shuffles"],
                          p_upper_bound=k == 0, relative_height=height / float(np.mean(hs))))
    evaluation = evaluate([t["p_value"] for t in tests], connected, inhibitory, p["threshold"])

    # Samples recorded for the C++ comparison: a regular grid, every sample near an output spike
    # (the overwritten peak, the reset) and near the hand-placed input spikes.
    keep = set(range(0, T, 25)) | {T - 1}
    for t in out_spikes:
        keep |= set(range(max(t - 3, 0), min(t + 4, T)))
    for t in (0, 1, 2, 12, 13, 14, 15, int(indices[2][5]), int(indices[5][3])):
        keep |= set(range(max(t - 1, 0), min(t + 3, T)))
    keep = sorted(keep)

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "spike_times.csv"), "w") as f:
        for times in trains:
            f.write(",".join(repr(float(t)) for t in times) + "\n")
    with open(os.path.join(OUT, "noise.csv"), "w") as f:
        f.write("\n".join(repr(float(x)) for x in noise) + "\n")
    with open(os.path.join(OUT, "permutations.csv"), "w") as f:
        for perm in permutations:
            f.write(",".join(str(int(j)) for j in perm) + "\n")
    with open(os.path.join(OUT, "trace.csv"), "w") as f:
        f.write("sample,v,g_exc,g_inh,i_syn\n")
        for t in keep:
            f.write(f"{t},{v[t]!r},{g_exc[t]!r},{g_inh[t]!r},{i_syn[t]!r}\n")
    expected = dict(
        meta=dict(numpy=np.__version__, seed=SEED,
                  note="written by tests/reference/n_to_1_reference.py; permutations.csv row input * shuffles + s"),
        parameters=p, samples=T, window_samples=L, sigma=sigma,
        inhibitory=inhibitory.tolist(), connected=connected.tolist(),
        spike_indices=[ix.tolist() for ix in indices], output_spikes=out_spikes,
        real_stas=real_stas, tests=tests, evaluation=evaluation, auc_cases=auc_cases(),
    )
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(nan_to_none(expected), f, indent=1)
        f.write("\n")
    print(f"T = {T}, output spikes {len(out_spikes)}, p-values {[t['p_value'] for t in tests]}, "
          f"connected {connected.tolist()}, at threshold {evaluation['at_threshold']}, "
          f"AUC {evaluation['auc']:.3f} / {evaluation['auc_exc']:.3f} / {evaluation['auc_inh']:.3f}")


if __name__ == "__main__":
    main()
