#!/usr/bin/python3
"""How causalsweep's cost grows: wall time of the sweep (manifest seconds.wall) against the number
of networks, n and T, each varied alone around a base point; the fitted exponent is the slope of
log(time) on log(variable) over the upper half of the range (where fixed costs no longer matter).
Writes scaling.csv, scaling.gp and, when gnuplot is installed, scaling.png into OUTDIR.

Usage: /usr/bin/python3 bench/scaling.py --build build --out DIR [--backend cpu] [--quick]
"""
import argparse
import csv
import json
import math
import os
import shutil
import subprocess

BASE = dict(networks=4, n=40, T=5000)
SWEEPS = {
    "networks": [1, 4, 16, 64, 256],
    "n": [6, 20, 50, 100, 200, 500],
    "T": [1000, 3000, 10000, 30000, 100000],
}


def measure(build, out, backend, networks, n, T):
    tag = f"{backend}_{networks}_{n}_{T}"
    config = os.path.join(out, tag + ".toml")
    with open(config, "w") as f:
        f.write(f"""name = "scaling"
[model]
n_neurons = {n}
timesteps = {T}
eta = 2.0
observed_ratio = [1.0, 0.8, 0.6, 0.4, 0.2]
[seeds]
count = {networks}
[estimators]
use = ["correlation", "lasso", "ols", "iv"]
""")
    target = os.path.join(out, tag)
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([os.path.join(build, "causalsweep"), "run", config, "-q", "--backend", backend, "-o", target],
                   check=True, stdout=subprocess.DEVNULL)
    return json.load(open(os.path.join(target, "manifest.json")))["seconds"]["wall"]


def slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--quick", action="store_true", help="drop the largest point of each sweep")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for variable, values in SWEEPS.items():
        values = values[:-1] if a.quick else values
        for v in values:
            point = dict(BASE, **{variable: v})
            seconds = measure(a.build, a.out, a.backend, point["networks"], point["n"], point["T"])
            rows.append(dict(backend=a.backend, variable=variable, value=v, seconds=seconds, **point))
            print(f"{variable:9} {v:>7}  {seconds:9.4f} s", flush=True)
    with open(os.path.join(a.out, "scaling.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    print("fitted exponents (upper half of each range):")
    for variable in SWEEPS:
        pts = [(r["value"], r["seconds"]) for r in rows if r["variable"] == variable]
        upper = pts[len(pts) // 2 - (len(pts) % 2 == 0):]
        print(f"  time ~ {variable}^{slope(*zip(*upper)):.2f}")
    with open(os.path.join(a.out, "scaling.gp"), "w") as f:
        f.write("""set terminal pngcairo size 1500,450 font ",10"
set output 'scaling.png'
set datafile separator ','
set logscale xy
set grid
set key top left
set multiplot layout 1,3 title 'causalsweep CPU backend: wall time of a sweep'
do for [v in "networks n T"] {
  set xlabel v
  set ylabel 'seconds'
  plot 'scaling.csv' using ((strcol(2) eq v) ? $3 : 1/0):4 with linespoints pt 7 title v
}
unset multiplot
""")
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot", "scaling.gp"], cwd=a.out, check=True)


if __name__ == "__main__":
    main()
