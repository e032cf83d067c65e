#!/usr/bin/env python3
"""Where the GPU time goes, by kernel: an Nsight Compute report against the device's measured ceilings.

Input: the raw page of an ncu report as CSV (`ncu --import R.ncu-rep --csv --page raw --print-units
base --print-kernel-base demangled`, with the metrics bench/run_gpu.sh's profile stage collects) and
the JSON line of `bench_cuda ceilings`. Output: one row per kernel (launches summed), most time
first: time and share, achieved FP64 and FP32 FLOP/s and DRAM bytes/s with their fractions of the
measured ceilings, ncu's own speed-of-light percentages, registers and achieved occupancy.
FLOPs count thread-level instructions: add and mul 1, fma 2; FP64 matrix instructions on the tensor
cores (DMMA, which cuBLAS / cuSOLVER may use) are not counted. Kernel names are shortened: no return
type, namespaces or parameter list, template arguments kept (they tell the block programs apart).

Usage: python3 bench/ncu_summary.py RAW.csv CEILINGS.json [--json OUT.json] [--top N]
"""
import argparse
import csv
import json
import re
import sys

METRICS = {
    "time": "gpu__time_duration.sum",
    "dram_read": "dram__bytes_read.sum",
    "dram_write": "dram__bytes_write.sum",
    "dadd": "smsp__sass_thread_inst_executed_op_dadd_pred_on.sum",
    "dmul": "smsp__sass_thread_inst_executed_op_dmul_pred_on.sum",
    "dfma": "smsp__sass_thread_inst_executed_op_dfma_pred_on.sum",
    "fadd": "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum",
    "fmul": "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum",
    "ffma": "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum",
    "sm_sol": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "memory_sol": "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "registers": "launch__registers_per_thread",
    "occupancy": "sm__warps_active.avg.pct_of_peak_sustained_active",
}

# Units ncu may print (with --print-units base it prints the first of each family).
SCALE = {"": 1, "%": 1, "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "nsecond": 1e-9, "usecond": 1e-6,
         "msecond": 1e-3, "second": 1, "inst": 1, "Kinst": 1e3, "Minst": 1e6, "Ginst": 1e9, "register/thread": 1}


UNKNOWN_UNITS = set()


def number(text, unit):
    text = text.strip().replace(",", "")
    if text in ("", "n/a", "N/A"):
        return None
    if unit not in SCALE and unit not in UNKNOWN_UNITS:
        # --print-units base prints base units, whatever they are called: taken as they are.
        UNKNOWN_UNITS.add(unit)
        print(f"note: unit {unit!r} taken as a base unit", file=sys.stderr)
    return float(text) * SCALE.get(unit, 1)


def short_name(name):
    """'void ns::(anonymous namespace)::kernel<ns::A, 3>(T1, int)' -> 'kernel<A, 3>'."""
    name = name.strip()
    if name.endswith(")"):  # drop the parameter list: the parenthesised group that ends the name
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i] if i > 0 else name
                break
    name = re.sub(r"^void\s+", "", name)
    return re.sub(r"(\(anonymous namespace\)|[A-Za-z_]\w*)::", "", name)


def read_launches(path):
    """One dict per kernel launch: name and the METRICS values in base units (None where missing)."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f)]
    except OSError as e:
        raise SystemExit(f"{path}: {e.strerror}")
    header_at = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if header_at is None:
        raise SystemExit(f"{path}: no 'Kernel Name' column (not an ncu --csv --page raw export?)")
    header = rows[header_at]
    column = {name: i for i, name in enumerate(header)}
    missing = [m for m in METRICS.values() if m not in column]
    if missing:
        raise SystemExit(f"{path}: metrics missing from the report: {', '.join(missing)}")
    body = rows[header_at + 1:]
    units = [""] * len(header)
    if body and body[0] and body[0][column.get("ID", 0)].strip() == "":  # the units row
        units = body[0] + [""] * (len(header) - len(body[0]))
        body = body[1:]
    launches = []
    for r in body:
        if len(r) < len(header):
            continue  # a line that is not a launch (ncu's notes)
        launch = {"name": short_name(r[column["Kernel Name"]])}
        for key, metric in METRICS.items():
            i = column[metric]
            try:
                launch[key] = number(r[i], units[i])
            except ValueError as e:
                raise SystemExit(f"{path}: {metric} of launch {r[column.get('ID', 0)]} ({launch['name']}): {e}")
        launches.append(launch)
    if not launches:
        raise SystemExit(f"{path}: no kernel launches in the report")
    return launches


def summarise(launches, ceilings):
    fp64_peak = 2 * ceilings["fp64_fma_per_s"]
    fp32_peak = 2 * ceilings["fp32_fma_per_s"]
    copy_peak = ceilings["copy_bytes_per_s"]
    weighted = ("sm_sol", "memory_sol", "occupancy")  # time-weighted means over the launches that have them
    by_name = {}
    for l in launches:
        t = l["time"]
        if not t:
            continue  # no duration: nothing to divide by (ncu could not time it)
        k = by_name.setdefault(l["name"], {"kernel": l["name"], "launches": 0, "seconds": 0.0, "fp64_flop": 0.0,
                                           "fp32_flop": 0.0, "dram_bytes": 0.0, "registers": 0,
                                           **{f"{w}_s": 0.0 for w in weighted}, **{f"{w}_t": 0.0 for w in weighted}})
        k["launches"] += 1
        k["seconds"] += t
        k["fp64_flop"] += (l["dadd"] or 0) + (l["dmul"] or 0) + 2 * (l["dfma"] or 0)
        k["fp32_flop"] += (l["fadd"] or 0) + (l["fmul"] or 0) + 2 * (l["ffma"] or 0)
        k["dram_bytes"] += (l["dram_read"] or 0) + (l["dram_write"] or 0)
        for w in weighted:
            if l[w] is not None:
                k[f"{w}_s"] += t * l[w]
                k[f"{w}_t"] += t
        k["registers"] = max(k["registers"], int(l["registers"] or 0))
    total = sum(k["seconds"] for k in by_name.values())
    rows = []
    for k in by_name.values():  # every kernel here has seconds > 0
        s = k["seconds"]
        rows.append({
            "kernel": k["kernel"], "launches": k["launches"], "seconds": s, "share": s / total,
            "fp64_flop_per_s": k["fp64_flop"] / s, "fp64_of_ceiling": k["fp64_flop"] / s / fp64_peak,
            "fp32_flop_per_s": k["fp32_flop"] / s, "fp32_of_ceiling": k["fp32_flop"] / s / fp32_peak,
            "dram_bytes_per_s": k["dram_bytes"] / s, "dram_of_ceiling": k["dram_bytes"] / s / copy_peak,
            **{f"{w}_pct": k[f"{w}_s"] / k[f"{w}_t"] if k[f"{w}_t"] > 0 else None for w in weighted},
            "registers": k["registers"],
        })
    rows.sort(key=lambda r: -r["seconds"])
    return rows, total


def pct(value):
    return "n/a" if value is None else f"{value:.0f}"


def table(rows, total, ceilings, top):
    lines = [
        f"ceilings (measured): FP64 {2 * ceilings['fp64_fma_per_s'] / 1e12:.1f} TFLOP/s, "
        f"FP32 {2 * ceilings['fp32_fma_per_s'] / 1e12:.1f} TFLOP/s, copy {ceilings['copy_bytes_per_s'] / 1e12:.2f} TB/s; "
        f"kernel time {total:.4f} s in all; FLOPs: add and mul 1, fma 2, tensor-core FP64 (DMMA) not counted",
        "",
        "| kernel | launches | s | share | FP64 TFLOP/s (of ceiling) | FP32 TFLOP/s (of ceiling) | DRAM TB/s (of ceiling) "
        "| SM SOL % | memory SOL % | occupancy % | registers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows[:top]:
        lines.append(
            f"| {r['kernel']} | {r['launches']} | {r['seconds']:.4f} | {100 * r['share']:.1f}% "
            f"| {r['fp64_flop_per_s'] / 1e12:.2f} ({100 * r['fp64_of_ceiling']:.0f}%) "
            f"| {r['fp32_flop_per_s'] / 1e12:.2f} ({100 * r['fp32_of_ceiling']:.0f}%) "
            f"| {r['dram_bytes_per_s'] / 1e12:.2f} ({100 * r['dram_of_ceiling']:.0f}%) "
            f"| {pct(r['sm_sol_pct'])} | {pct(r['memory_sol_pct'])} | {pct(r['occupancy_pct'])} | {r['registers']} |")
    if len(rows) > top:
        rest = sum(r["seconds"] for r in rows[top:])
        lines.append(f"| ({len(rows) - top} more kernels) | | {rest:.4f} | {100 * rest / total:.1f}% | | | | | | | |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("raw_csv")
    ap.add_argument("ceilings_json")
    ap.add_argument("--json", help="also write the rows as JSON here")
    ap.add_argument("--top", type=int, default=15, help="kernels in the table (the rest summed in one row)")
    a = ap.parse_args()
    try:
        with open(a.ceilings_json) as f:
            ceilings = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, IndexError, ValueError) as e:
        raise SystemExit(f"{a.ceilings_json}: not the JSON line of `bench_cuda ceilings` ({e})")
    for key in ("copy_bytes_per_s", "fp64_fma_per_s", "fp32_fma_per_s"):
        if not ceilings.get(key, 0) > 0:
            raise SystemExit(f"{a.ceilings_json}: no positive {key}")
    rows, total = summarise(read_launches(a.raw_csv), ceilings)
    if not rows:
        raise SystemExit(f"{a.raw_csv}: no launch has a duration (gpu__time_duration.sum)")
    print(table(rows, total, ceilings, a.top))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"ceilings": ceilings, "kernel_seconds": total, "kernels": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
