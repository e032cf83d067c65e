#!/usr/bin/python3
"""Side-by-side benchmark of causalsweep against the peers a user would pick instead.

For each workload it runs every available contender in this process tree, checks that each
peer's seed-averaged curves agree with causalsweep's within statistical error (|difference| <=
4 standard errors, per estimator and observed ratio; a peer that disagrees is reported and its
time is not printed), then prints time, throughput and the ratio to causalsweep.

Contenders, CPU set (the default): notebook (bench/peers/notebook.py), vectorized_numpy
(bench/peers/vectorized_numpy.py), causalsweep_cpu (the CPU backend on all cores), and jax and torch
(bench/peers/jax_peer.py, torch_peer.py, forced onto the CPU) when their module imports in
--peer-python (otherwise a "skipped: jax not installed" line).
GPU set (--gpu, `bench/run_gpu.sh harness`): jax and torch on the GPU (skipped, with the reason, where the
framework sees none; --peer-device auto lets them fall back to the CPU, the table says which),
causalsweep_cuda (`causalsweep run --backend cuda`; exit 2 is reported as "skipped: <its reason>")
and causalsweep_cpu on all cores. causalsweep_cpu is the agreement reference in both sets.
Peers that would take hours run on a slice of the networks (stated in the table; --slice changes
it): per-network times are measured, never extrapolated from another machine or run.

Times: causalsweep and the CPU peers are timed as whole processes (start-up included). jax and torch
report their own time of the work after a warm-up on the same shapes (JIT compilation, CUDA graph
capture, library initialisation): that warm-up is the "setup s" column, not in s/network.

Usage: /usr/bin/python3 bench/harness.py --build build --out DIR [--workloads single,tutorial4,W]
       python3 bench/harness.py --gpu --build build --out DIR [--peer-python PY] [--slice W.jax=2000 ...]
Options for the jax and torch peers: --peer-python, --peer-device, --peer-batch, and extra arguments
--peer-args (both), --jax-args, --torch-args (give one-word values with '=': --torch-args=--no-cuda-graph).
--contenders jax,torch runs only those beside causalsweep_cpu (the reference).
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

# name: (n, T, eta, networks in the workload, networks each contender measures: CPU set, GPU set)
WORKLOADS = {
    "single": dict(n=100, T=5000, eta=2.0, networks=1,
                   slices={"notebook": 1, "vectorized_numpy": 4, "causalsweep_cpu": 16, "jax": 4, "torch": 4},
                   gpu_slices={"jax": 16, "torch": 16, "causalsweep_cuda": 16, "causalsweep_cpu": 16}),
    "tutorial4": dict(n=40, T=20000, eta=2.0, networks=100,
                      slices={"notebook": 2, "vectorized_numpy": 20, "causalsweep_cpu": 100, "jax": 20, "torch": 20},
                      gpu_slices={"jax": 100, "torch": 100, "causalsweep_cuda": 100, "causalsweep_cpu": 100}),
    "W": dict(n=100, T=5000, eta=2.0, networks=10000,
              slices={"notebook": 1, "vectorized_numpy": 8, "causalsweep_cpu": 64, "jax": 8, "torch": 8},
              gpu_slices={"jax": 10000, "torch": 10000, "causalsweep_cuda": 10000, "causalsweep_cpu": 640}),
}
CPU_SET = ["causalsweep_cpu", "vectorized_numpy", "notebook", "jax", "torch"]
GPU_SET = ["causalsweep_cpu", "causalsweep_cuda", "jax", "torch"]
FRAMEWORK_PEERS = {"jax": ("jax_peer.py", "jax"), "torch": ("torch_peer.py", "torch")}


class Skipped(Exception):
    """A contender that cannot run here: the reason goes into the table instead of a time."""


def run_causalsweep(build, out, w, networks, threads, backend="cpu"):
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
    target = config[:-5] + ("_out" if backend == "cpu" else f"_{backend}_out")
    subprocess.run(["rm", "-rf", target], check=True)
    start = time.perf_counter()
    if backend == "cpu":
        subprocess.run([os.path.join(build, "causalsweep"), "run", config, "-q", "--backend", "cpu", "--threads",
                        str(threads), "-o", target], check=True, stdout=subprocess.DEVNULL)
    else:
        run = subprocess.run([os.path.join(build, "causalsweep"), "run", config, "-q", "--backend", backend,
                              "--no-report", "-o", target], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            lines = [l for l in run.stderr.strip().splitlines() if l.strip()]
            reason = lines[-1] if lines else ""
            if run.returncode == 2:
                raise Skipped(reason or "exit 2")
            raise Skipped(f"failed (exit {run.returncode}): {reason}")
    seconds = time.perf_counter() - start
    scores = []
    with open(os.path.join(target, "runs.csv")) as f:
        header = f.readline().strip().split(",")
        for line in f:
            row = dict(zip(header, line.strip().split(",")))
            if row["score"] == "corr_with_truth":
                scores.append((row["estimator"], float(row["observed_ratio"]), float(row["value"])))
    info = {}
    try:
        manifest = json.load(open(os.path.join(target, "manifest.json")))
        info = {"device": manifest["backend"]["device"], "sweep_wall_seconds": manifest["seconds"]["wall"]}
    except (OSError, KeyError, ValueError):
        pass
    return seconds, scores, info


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
    return seconds, scores, {}


def framework_available(python, module):
    try:
        ok = subprocess.run([python, "-c", f"import {module}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        ok = False
    return ok


def run_framework_peer(script, python, out, w, networks, name, device, batch, extra):
    """jax / torch: the peer's own time of the work (after its warm-up), its setup time apart."""
    path = os.path.join(out, f"{name}_{w['n']}_{w['T']}_{networks}.json")
    log = path[:-5] + ".stderr"
    args = [python, script, "--n", str(w["n"]), "--timesteps", str(w["T"]), "--eta", str(w["eta"]),
            "--ratios", ",".join(str(r) for r in RATIOS), "--json", path, "--networks", str(networks),
            "--batch", str(batch), "--device", device] + extra
    with open(log, "w") as err:
        run = subprocess.run(args, stderr=err)
    if run.returncode != 0:
        lines = [l for l in open(log).read().strip().splitlines() if l.strip()]
        last = lines[-1] if lines else ""
        if run.returncode == 2 and "--device gpu" in last:
            raise Skipped(last)                 # the peer's own "no GPU" message
        raise Skipped(f"failed (exit {run.returncode}): {last} (see {log})")
    data = json.load(open(path))
    scores = [(s["estimator"], float(s["observed_ratio"]), float(s["corr_with_truth"])) for s in data["scores"]]
    info = {"setup_seconds": data.get("compile_seconds"), "device": data.get("device"),
            "precision": data.get("precision"), "batch": data.get("batch"), "phase_seconds": data.get("phase_seconds"),
            "lasso_unconverged": data.get("lasso", {}).get("unconverged_targets"),
            "time_loop": data.get("time_loop")}
    return data["seconds_total"], scores, info


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


def parse_slices(items):
    """--slice jax=100 (every workload) or --slice W.jax=2000 (one workload)."""
    out = {}
    for item in items:
        key, _, count = item.partition("=")
        workload, _, contender = key.rpartition(".")
        out[(workload or None, contender)] = int(count)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workloads", default="single,tutorial4,W")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--gpu", action="store_true",
                    help="the GPU contender set: jax, torch, causalsweep_cuda, causalsweep_cpu on all cores")
    ap.add_argument("--contenders", help="comma list: run only these of the set (causalsweep_cpu always runs)")
    ap.add_argument("--slice", action="append", default=[], metavar="[WORKLOAD.]CONTENDER=N",
                    help="networks a contender measures (repeatable)")
    ap.add_argument("--peer-python", default=sys.executable, help="interpreter for the jax and torch peers")
    ap.add_argument("--peer-batch", type=int, default=0, help="--batch for the jax and torch peers (0: automatic)")
    ap.add_argument("--peer-device", choices=["auto", "cpu", "gpu"],
                    help="--device for the jax and torch peers (default: gpu with --gpu, a peer that sees no GPU is "
                         "reported as skipped; cpu otherwise)")
    ap.add_argument("--peer-args", default="", help="extra arguments for the jax and torch peers, e.g. '--sim-dtype float64'")
    ap.add_argument("--jax-args", default="", help="extra arguments for the jax peer only, e.g. '--unroll 16'")
    ap.add_argument("--torch-args", default="", help="extra arguments for the torch peer only, e.g. '--no-cuda-graph'")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    contenders = GPU_SET if a.gpu else CPU_SET
    if a.contenders:
        wanted = set(a.contenders.split(",")) | {"causalsweep_cpu"}
        contenders = [c for c in contenders if c in wanted]
    overrides = parse_slices(a.slice)
    peer_device = a.peer_device or ("gpu" if a.gpu else "cpu")
    skipped = {}
    for peer, (_, module) in FRAMEWORK_PEERS.items():
        if peer in contenders and not framework_available(a.peer_python, module):
            skipped[peer] = f"{module} not installed (for {a.peer_python})"
            print(f"   {peer}: skipped: {skipped[peer]}", file=sys.stderr)
    rows = []
    for name in a.workloads.split(","):
        w = WORKLOADS[name]
        slices = w["gpu_slices"] if a.gpu else w["slices"]

        def measured(contender):
            return overrides.get((name, contender), overrides.get((None, contender), slices[contender]))

        print(f"== workload {name}: n={w['n']} T={w['T']} eta={w['eta']}, {w['networks']} network(s)", file=sys.stderr)
        results = {}
        reasons = {}
        for contender in contenders:
            networks = measured(contender)
            if contender in skipped:
                reasons[contender] = skipped[contender]
                continue
            print(f"   {contender}: {networks} network(s) ...", file=sys.stderr)
            try:
                if contender == "causalsweep_cpu":
                    out = run_causalsweep(a.build, a.out, w, networks, a.threads)
                elif contender == "causalsweep_cuda":
                    out = run_causalsweep(a.build, a.out, w, networks, a.threads, backend="cuda")
                elif contender in FRAMEWORK_PEERS:
                    out = run_framework_peer(os.path.join(here, "peers", FRAMEWORK_PEERS[contender][0]), a.peer_python,
                                             a.out, w, networks, contender, peer_device, a.peer_batch,
                                             a.peer_args.split() + getattr(a, f"{contender}_args").split())
                else:
                    out = run_peer(os.path.join(here, "peers", f"{contender}.py"), a.out, w, networks, contender)
            except Skipped as e:
                reasons[contender] = str(e)
                print(f"   {contender}: skipped: {e}", file=sys.stderr)
                continue
            results[contender] = (networks, *out)
        reference = summarise(results["causalsweep_cpu"][2])
        per_cs = {c: results[c][1] / results[c][0] for c in ("causalsweep_cpu", "causalsweep_cuda") if c in results}
        for contender in contenders:
            if contender in reasons:
                rows.append(dict(workload=name, contender=contender, skipped=reasons[contender]))
                continue
            networks, seconds, scores, info = results[contender]
            per = seconds / networks
            sigma = 0.0 if contender == "causalsweep_cpu" else agree(summarise(scores), reference)
            row = dict(workload=name, contender=contender, networks_measured=networks, seconds=seconds,
                       seconds_per_network=per, networks_per_second=1 / per,
                       workload_seconds=per * w["networks"], ratio_to_causalsweep=per / per_cs["causalsweep_cpu"],
                       agreement_sigma=sigma, agrees=sigma <= 4.0)
            if "causalsweep_cuda" in per_cs:
                row["ratio_to_causalsweep_cuda"] = per / per_cs["causalsweep_cuda"]
            row.update({k: v for k, v in info.items() if v is not None})
            rows.append(row)
    with open(os.path.join(a.out, "harness.json"), "w") as f:
        json.dump(rows, f, indent=1)
    extra = a.gpu or any("setup_seconds" in r for r in rows)
    print(f"{'workload':10} {'contender':18} {'measured':>9} {'s/network':>10} {'networks/s':>11} "
          f"{'workload s':>11} {'x causalsweep':>14}" + (f" {'x cs_cuda':>10} {'setup s':>8}" if extra else "")
          + f" {'agrees (sigma)':>15}" + ("  device" if extra else ""))
    for r in rows:
        if "skipped" in r:
            print(f"{r['workload']:10} {r['contender']:18} skipped: {r['skipped']}")
            continue
        width = 49 + (20 if extra else 0)
        if r["agrees"]:
            time_cols = (f"{r['seconds_per_network']:10.4f} {r['networks_per_second']:11.2f} {r['workload_seconds']:11.1f} "
                         f"{r['ratio_to_causalsweep']:14.1f}")
            if extra:
                cuda = f"{r['ratio_to_causalsweep_cuda']:10.1f}" if "ratio_to_causalsweep_cuda" in r else f"{'-':>10}"
                setup = f"{r['setup_seconds']:8.2f}" if "setup_seconds" in r else f"{'-':>8}"
                time_cols += f" {cuda} {setup}"
        else:
            time_cols = f"{'(curves disagree: time withheld)':>{width}}"
        device = f"  {r.get('device', '')}" if extra else ""
        print(f"{r['workload']:10} {r['contender']:18} {r['networks_measured']:9d} {time_cols} "
              f"{('yes' if r['agrees'] else 'NO'):>9} ({r['agreement_sigma']:.1f}){device}")


if __name__ == "__main__":
    main()
