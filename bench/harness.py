#!/usr/bin/python3
"""Side-by-side benchmark of causalsweep against the peers a user would pick instead.

For each workload it runs every available contender in this process tree, checks that each
peer's seed-averaged curves agree with causalsweep's within statistical error (|difference| <=
4 standard errors, per estimator and observed ratio; a peer that disagrees is reported and its
time is not printed), then prints time, throughput and the ratio to causalsweep.

Contenders here (CPU): notebook (bench/peers/notebook.py), vectorized_numpy
(bench/peers/vectorized_numpy.py), causalsweep_cpu (the CPU backend on all cores). Peers that
would take hours run on a slice of the networks (stated in the table): per-network times are
measured, never extrapolated from another machine or run.

Usage: /usr/bin/python3 bench/harness.py --build build --out DIR [--workloads single,tutorial4,W]
"""
import argparse
import collections
import json
import math
import os
import subprocess
import sys
import time

ESTIMATORS = ["correlation", "lasso", "ols", "iv"]
RATIOS = [1.0, 0.8, 0.6, 0.4, 0.2]

# name: (n, T, eta, networks in the workload, networks each peer measures)
WORKLOADS = {
    "single": dict(n=100, T=5000, eta=2.0, networks=1, slices={"notebook": 1, "vectorized_numpy": 4, "causalsweep_cpu": 16}),
    "tutorial4": dict(n=40, T=20000, eta=2.0, networks=100, slices={"notebook": 2, "vectorized_numpy": 20, "causalsweep_cpu": 100}),
    "W": dict(n=100, T=5000, eta=2.0, networks=10000, slices={"notebook": 1, "vectorized_numpy": 8, "causalsweep_cpu": 64}),
}


def run_causalsweep(build, out, w, networks, threads):
    config = os.path.join(out, f"cs_{w['n']}_{w['T']}_{networks}.toml")
    with open(config, "w") as f:
        f.write(f"""name = "bench"
[model]
n_neurons = {w['n']}
timesteps = {w['T']}
eta = {w['eta']}
observed_ratio = {RATIOS}
[seeds]
count = {networks}
[estimators]
use = {json.dumps(ESTIMATORS)}
""")
    target = config[:-5] + "_out"
    subprocess.run(["rm", "-rf", target], check=True)
    start = time.perf_counter()
    subprocess.run([os.path.join(build, "causalsweep"), "run", config, "-q", "--backend", "cpu", "--threads",
                    str(threads), "-o", target], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    scores = []
    with open(os.path.join(target, "runs.csv")) as f:
        header = f.readline().strip().split(",")
        for line in f:
            row = dict(zip(header, line.strip().split(",")))
            if row["score"] == "corr_with_truth":
                scores.append((row["estimator"], float(row["observed_ratio"]), float(row["value"])))
    return seconds, scores


def run_peer(script, out, w, networks, name):
    path = os.path.join(out, f"{name}_{w['n']}_{w['T']}_{networks}.json")
    args = ["/usr/bin/python3", script, "--n", str(w["n"]), "--timesteps", str(w["T"]), "--eta", str(w["eta"]),
            "--ratios", ",".join(str(r) for r in RATIOS), "--json", path]
    args += ["--seeds", str(networks)] if name == "notebook" else ["--networks", str(networks), "--batch", str(min(networks, 16))]
    start = time.perf_counter()
    subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    data = json.load(open(path))
    scores = [(s["estimator"], float(s["observed_ratio"]), float(s["corr_with_truth"])) for s in data["scores"]]
    return seconds, scores


def summarise(scores):
    groups = collections.defaultdict(list)
    for est, ratio, value in scores:
        if not math.isnan(value):
            groups[(est, ratio)].append(value)
    out = {}
    for key, values in groups.items():
        m = sum(values) / len(values)
        sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
        out[key] = (m, sd, len(values))
    return out


def agree(peer, reference):
    """Worst |difference| in units of its standard error; NaN standard errors use the reference's spread."""
    worst = 0.0
    for key, (m, sd, n) in peer.items():
        if key not in reference:
            continue
        rm, rsd, rn = reference[key]
        spread = sd if not math.isnan(sd) else rsd
        se = math.sqrt(spread ** 2 / n + rsd ** 2 / rn)
        worst = max(worst, abs(m - rm) / se if se > 0 else 0.0)
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workloads", default="single,tutorial4,W")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []
    for name in a.workloads.split(","):
        w = WORKLOADS[name]
        print(f"== workload {name}: n={w['n']} T={w['T']} eta={w['eta']}, {w['networks']} network(s)", file=sys.stderr)
        results = {}
        cs_networks = w["slices"]["causalsweep_cpu"]
        results["causalsweep_cpu"] = (cs_networks, *run_causalsweep(a.build, a.out, w, cs_networks, a.threads))
        for peer in ["vectorized_numpy", "notebook"]:
            networks = w["slices"][peer]
            print(f"   {peer}: {networks} network(s) ...", file=sys.stderr)
            results[peer] = (networks, *run_peer(os.path.join(here, "peers", f"{peer}.py"), a.out, w, networks, peer))
        reference = summarise(results["causalsweep_cpu"][2])
        cs_per_network = results["causalsweep_cpu"][1] / results["causalsweep_cpu"][0]
        for contender, (networks, seconds, scores) in results.items():
            per = seconds / networks
            sigma = 0.0 if contender == "causalsweep_cpu" else agree(summarise(scores), reference)
            rows.append(dict(workload=name, contender=contender, networks_measured=networks, seconds=seconds,
                             seconds_per_network=per, networks_per_second=1 / per,
                             workload_seconds=per * w["networks"], ratio_to_causalsweep=per / cs_per_network,
                             agreement_sigma=sigma, agrees=sigma <= 4.0))
    with open(os.path.join(a.out, "harness.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(f"{'workload':10} {'contender':18} {'measured':>9} {'s/network':>10} {'networks/s':>11} "
          f"{'workload s':>11} {'x causalsweep':>14} {'agrees (sigma)':>15}")
    for r in rows:
        time_cols = (f"{r['seconds_per_network']:10.4f} {r['networks_per_second']:11.2f} {r['workload_seconds']:11.1f} "
                     f"{r['ratio_to_causalsweep']:14.1f}") if r["agrees"] else f"{'(curves disagree: time withheld)':>49}"
        print(f"{r['workload']:10} {r['contender']:18} {r['networks_measured']:9d} {time_cols} "
              f"{('yes' if r['agrees'] else 'NO'):>9} ({r['agreement_sigma']:.1f})")


if __name__ == "__main__":
    main()
