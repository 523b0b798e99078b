"""Benchmark: calibrate one real bead tube (read + calibrate) vs FlowCal 1.3.1 on the same file.

Both find the bead populations on FL1 and FL3 together (FlowCal's clustering channels on these
files) and take the FL1 medians.

Run:  .venv/bin/python benchmarks/bench_calibration.py [--repeat 5]
Prints wall times (best of N, after one warm-up run each), the ratio (target >= 10x),
peak Python memory (tracemalloc) of one run each, and the per-level medians next to FlowCal's.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.bead_calibration import calibrate_file  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.fcs import read_fcs  # noqa: E402
from pipeline.lots import Lot  # noqa: E402

CORPUS = REPO.parent / "shared" / "real_fcs"
FILES = {
    "FlowCal/examples/FCFiles/sample001.fcs": (0, 792, 2079, 6588, 16471, 47497, 137049, 271647),
    "FlowCal/examples/FCFiles/min/sample001.fcs": (0, 771, 2106, 6262, 15183, 45292, 136258, 291042),
    "FlowCal/examples/FCFiles/max/sample002.fcs": (0, 792, 2079, 6588, 16471, 47497, 137049, 271647),
    "FlowCal/history/2016/Beads006.fcs": (0, 646, 1704, 4827, 15991, 47609, 135896, 273006),
}
TIMED = "FlowCal/examples/FCFiles/sample001.fcs"
CLUSTERING = ["FL1", "FL3"]


def ours(path: Path, values):
    return calibrate_file(read_fcs(path), Lot(None, tuple(float(v) for v in values)), load_settings(env={}),
                          channel="FL1", clustering_channels=CLUSTERING)


def flowcal(path: Path, values):
    import FlowCal
    np.random.seed(0)
    data = FlowCal.transform.to_rfi(FlowCal.io.FCSData(str(path)))
    data = FlowCal.gate.start_end(data, num_start=250, num_end=100)
    data = FlowCal.gate.high_low(data, channels=["FSC", "SSC"])
    data = FlowCal.gate.density2d(data, channels=["FSC", "SSC"], gate_fraction=0.85)
    return FlowCal.mef.get_transform_fxn(data, mef_values=[list(values)], mef_channels=["FL1"],
                                         clustering_channels=CLUSTERING, full_output=True)


def best_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    path, values = CORPUS / TIMED, FILES[TIMED]
    t_ours = best_time(lambda: ours(path, values), args.repeat)
    t_fc = best_time(lambda: flowcal(path, values), args.repeat)
    print(f"file: {TIMED}")
    print(f"mhladr read+calibrate : {t_ours * 1000:8.1f} ms   peak {peak_mib(lambda: ours(path, values)):6.1f} MiB")
    print(f"FlowCal read+gate+MEF : {t_fc * 1000:8.1f} ms   peak {peak_mib(lambda: flowcal(path, values)):6.1f} MiB")
    print(f"speed-up              : {t_fc / t_ours:8.1f}x (target >= 10x)")
    print("\nper-level medians, FL1 (ours / FlowCal, relative difference)")
    for rel, vals in FILES.items():
        cal = ours(CORPUS / rel, vals)
        ref = np.asarray(flowcal(CORPUS / rel, vals).statistic["values"][0], dtype=float)
        print(rel)
        for p, r in zip(cal.populations, ref):
            mine = p.fluorescence
            diff = f"{(mine - r) / r:+6.1%}" if mine is not None else "   n/a"
            shown = f"{mine:9.1f}" if mine is not None else "  missing"
            print(f"  {p.bead_value:>9,.0f}  {shown}  {r:9.1f}  {diff}  {p.status}")
        print(f"  QC {cal.qc.status}: " + "; ".join(cal.qc.reasons))


if __name__ == "__main__":
    main()
