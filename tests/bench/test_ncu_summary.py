#!/usr/bin/env python3
"""bench/ncu_summary.py on a hand-written ncu raw export: sums by kernel, units, rates against ceilings."""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "ncu_summary.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import ncu_summary  # noqa: E402

METRICS = list(ncu_summary.METRICS.values())
UNITS = {"gpu__time_duration.sum": "nsecond", "dram__bytes_read.sum": "byte", "dram__bytes_write.sum": "byte",
         "sm__throughput.avg.pct_of_peak_sustained_elapsed": "%",
         "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed": "%",
         "launch__registers_per_thread": "register/thread", "sm__warps_active.avg.pct_of_peak_sustained_active": "%"}
LEAD = ["ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Context", "Stream", "Block Size", "Grid Size",
        "Device", "CC"]


def launch(i, name, time_ns, read, write, dadd, dmul, dfma, fadd, fmul, ffma, sm, mem, regs, occ):
    values = [time_ns, read, write, dadd, dmul, dfma, fadd, fmul, ffma, sm, mem, regs, occ]
    return [str(i), "4242", "bench_cuda", "127.0.0.1", name, "1", "7", "(256, 1, 1)", "(132, 1, 1)", "0", "9.0"] + values


def export(rows, units_row=True):
    f = io.StringIO()
    w = csv.writer(f, quoting=csv.QUOTE_ALL)
    w.writerow(LEAD + METRICS)
    if units_row:
        w.writerow([""] * len(LEAD) + [UNITS.get(m, "inst") for m in METRICS])
    for r in rows:
        w.writerow(r)
    return f.getvalue()


CEILINGS = {"measure": "ceilings", "copy_bytes_per_s": 2e12, "fp64_fma_per_s": 1e13, "fp32_fma_per_s": 2e13}


class NcuSummary(unittest.TestCase):
    def run_script(self, text, *extra, ceilings=CEILINGS):
        with tempfile.TemporaryDirectory() as d:
            raw, ceil, out = (os.path.join(d, n) for n in ("raw.csv", "ceilings.json", "summary.json"))
            with open(raw, "w") as f:
                f.write(text)
            with open(ceil, "w") as f:
                f.write(json.dumps(ceilings) + "\n")
            run = subprocess.run([sys.executable, SCRIPT, raw, ceil, "--json", out, *extra], capture_output=True, text=True)
            if run.returncode != 0:
                return run, None
            with open(out) as f:
                return run, json.load(f)

    def test_sums_launches_by_kernel_and_rates_against_ceilings(self):
        rows = [
            # simulate: 2 launches, 1 ms + 3 ms; 1e9 dfma + 2e9 dadd over both; 4e9 bytes; SOL 80 then 40.
            launch(0, "simulate_gram_kernel", "1,000,000", "1e9", "0", "1e9", "0", "5e8", "0", "0", "1e9", "80", "10", "72", "50"),
            launch(1, "simulate_gram_kernel", "3000000", "2e9", "1e9", "1e9", "0", "5e8", "0", "0", "0", "40", "30", "72", "30"),
            # a solver kernel: 1 ms, no FP work counted, n/a occupancy.
            launch(2, "potrf_batched", "1000000", "0", "0", "0", "0", "0", "1e9", "1e9", "0", "20", "60", "128", "n/a"),
        ]
        run, s = self.run_script(export(rows))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertAlmostEqual(s["kernel_seconds"], 5e-3)
        sim, potrf = s["kernels"]
        self.assertEqual((sim["kernel"], sim["launches"], potrf["kernel"]), ("simulate_gram_kernel", 2, "potrf_batched"))
        self.assertAlmostEqual(sim["seconds"], 4e-3)
        self.assertAlmostEqual(sim["share"], 0.8)
        # FP64: dadd 2e9 + 2 x dfma 1e9 = 4e9 FLOP in 4 ms = 1e12 FLOP/s; ceiling 2 x 1e13.
        self.assertAlmostEqual(sim["fp64_flop_per_s"], 1e12)
        self.assertAlmostEqual(sim["fp64_of_ceiling"], 0.05)
        # FP32: 2 x ffma 1e9 = 2e9 FLOP in 4 ms = 5e11; ceiling 4e13.
        self.assertAlmostEqual(sim["fp32_flop_per_s"], 5e11)
        self.assertAlmostEqual(sim["fp32_of_ceiling"], 0.0125)
        # DRAM: 1e9 + 2e9 + 1e9 bytes in 4 ms = 1e12 B/s, half the copy ceiling.
        self.assertAlmostEqual(sim["dram_bytes_per_s"], 1e12)
        self.assertAlmostEqual(sim["dram_of_ceiling"], 0.5)
        # Time-weighted: (1 x 80 + 3 x 40) / 4 = 50; occupancy (50 + 90) / 4 = 35.
        self.assertAlmostEqual(sim["sm_sol_pct"], 50)
        self.assertAlmostEqual(sim["memory_sol_pct"], 25)
        self.assertAlmostEqual(sim["occupancy_pct"], 35)
        self.assertEqual(sim["registers"], 72)
        self.assertAlmostEqual(potrf["fp32_flop_per_s"], 2e12)
        self.assertIsNone(potrf["occupancy_pct"])  # n/a: no value, not a zero
        self.assertIn("| simulate_gram_kernel | 2 | 0.0040 | 80.0% | 1.00 (5%)", run.stdout)

    def test_names_are_shortened_and_template_arguments_kept(self):
        ns = "causalsweep::cuda::(anonymous namespace)::"
        rows = [launch(0, f"void {ns}block_program_kernel<{ns}AssembleOls>(T1)", "1000", "0", "0", "0", "0", "0", "0",
                       "0", "0", "1", "1", "32", "1"),
                launch(1, f"void {ns}block_program_kernel<{ns}FinishIv>(T1)", "3000", "0", "0", "0", "0", "0", "0",
                       "0", "0", "1", "1", "32", "1"),
                launch(2, "void gemv2T_kernel_val<int, int, double, 128, 16, 4, 4, false>(const double *, int)", "",
                       "0", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1")]  # no time: left out
        run, s = self.run_script(export(rows))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual([k["kernel"] for k in s["kernels"]],
                         ["block_program_kernel<FinishIv>", "block_program_kernel<AssembleOls>"])
        self.assertAlmostEqual(s["kernel_seconds"], 4e-6)
        self.assertEqual(ncu_summary.short_name("void f<(int)3>(float *, int)"), "f<(int)3>")
        self.assertEqual(ncu_summary.short_name("plain_kernel"), "plain_kernel")

    def test_scaled_units_and_the_table_limit(self):
        rows = [launch(0, "a", "2", "1", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1"),
                launch(1, "b", "1", "1", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1")]
        text = export(rows).replace('"nsecond"', '"msecond"', 1).replace('"byte"', '"Gbyte"', 1)
        run, s = self.run_script(text, "--top", "1")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertAlmostEqual(s["kernel_seconds"], 3e-3)
        self.assertAlmostEqual(s["kernels"][0]["dram_bytes_per_s"], 1e9 / 2e-3)
        self.assertIn("| (1 more kernels) | | 0.0010 | 33.3% |", run.stdout)

    def test_bad_inputs_say_what_is_wrong(self):
        run, _ = self.run_script("just,some,csv\n1,2,3\n")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("no 'Kernel Name' column", run.stderr)
        text = export([]).replace("sm__throughput.avg.pct_of_peak_sustained_elapsed", "something_else")
        run, _ = self.run_script(text)
        self.assertIn("metrics missing from the report: sm__throughput", run.stderr)
        run, _ = self.run_script(export([]))
        self.assertIn("no kernel launches", run.stderr)
        not_a_number = export([launch(0, "a", "2 ns", "1", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1")])
        run, _ = self.run_script(not_a_number)
        self.assertIn("gpu__time_duration.sum of launch 0 (a): could not convert", run.stderr)

    def test_no_timed_launch_or_bad_ceilings_say_what_is_wrong(self):
        untimed = export([launch(0, "a", "", "1", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1")])
        run, _ = self.run_script(untimed)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("no launch has a duration", run.stderr)
        timed = export([launch(0, "a", "2", "1", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1")])
        run, _ = self.run_script(timed, ceilings=dict(CEILINGS, fp64_fma_per_s=0))
        self.assertIn("no positive fp64_fma_per_s", run.stderr)

    def test_an_unknown_unit_is_taken_as_base(self):
        text = export([launch(0, "a", "2", "1", "0", "0", "0", "0", "0", "0", "0", "1", "1", "32", "1")])
        run, s = self.run_script(text.replace('"register/thread"', '"registers"', 1))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("note: unit 'registers' taken as a base unit", run.stderr)
        self.assertEqual(s["kernels"][0]["registers"], 32)


if __name__ == "__main__":
    unittest.main()
