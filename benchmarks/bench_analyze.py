"""Benchmark: ``analyze`` of a 200k- and a 1M-event tube vs flowkit doing less on the same file.

Each measurement runs in its own subprocess, so wall time and peak resident memory
(``ru_maxrss``) belong to that one job:
- ``ours``: read (the reader compensates) + debris/singlet/monocyte gates + statistic + AB/C + QC
  (``pipeline.measurement.measure``), bead calibration excluded (fitted once per day).
- ``flowkit``: ``flowkit.Sample`` load + compensation with the file's matrix + one fixed
  polygon gate (SSC-A vs CD14) + median PE of the gated events.
- ``cli``: one whole ``mhladr analyze --json`` process (interpreter start, imports, beads too).
Targets (issue 4): ours no slower than flowkit; peak memory for 1M events under 400 MB.

Run: ``.venv/bin/python benchmarks/bench_analyze.py [--sizes 200000 1000000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOT_A = (474.0, 5359.0, 23843.0, 62336.0)


def _make(folder: Path, events: int) -> tuple[Path, Path]:
    from data_samples.generate import CANTO, make_bead_tube, make_patient_tube, write_tube
    beads = write_tube(make_bead_tube(CANTO, LOT_A, seed=1, filename="BEADS_2026-03-12_lotA_CANTO.fcs"), folder)
    sample = write_tube(make_patient_tube(CANTO, abc=6000.0, events=events, seed=2, patient_id="PT-0700",
                                          collection_date=date(2026, 3, 12), icu_admission=date(2026, 3, 6),
                                          filename=f"PT-0700_D06_{events}.fcs"), folder)
    return sample, beads


def _ours(sample: Path, beads: Path) -> dict:
    from pipeline.bead_calibration import calibrate_file
    from pipeline.config import load_settings
    from pipeline.fcs import read_fcs
    from pipeline.measurement import measure
    settings = load_settings(env={})
    cal = calibrate_file(read_fcs(beads, settings), LOT_A, "lotA")
    start = time.perf_counter()
    result = measure(read_fcs(sample, settings), cal, settings)
    return {"seconds": time.perf_counter() - start, "abc": result.abc, "monocytes": result.monocytes}


def _flowkit(sample: Path, beads: Path) -> dict:
    import flowkit as fk
    import numpy as np
    start = time.perf_counter()
    s = fk.Sample(str(sample))
    s.apply_compensation(s.metadata["spillover"])
    strategy = fk.GatingStrategy()
    dims = [fk.Dimension("PerCP-Cy5-5-A", compensation_ref="FCS"), fk.Dimension("SSC-A", compensation_ref="uncompensated")]
    gate = fk.gates.PolygonGate("monocytes", dims, [[8e3, 3e4], [2e5, 3e4], [2e5, 9e4], [8e3, 9e4]])
    strategy.add_gate(gate, gate_path=("root",))
    membership = strategy.gate_sample(s).get_gate_membership("monocytes")
    pe = s.get_events(source="comp")[:, s.get_channel_index("PE-A")]
    median = float(np.median(pe[membership]))
    return {"seconds": time.perf_counter() - start, "median": median, "gated": int(membership.sum())}


def _peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would inherit the parent's peak across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, sample: str, beads: str) -> None:
    out = (_ours if mode == "ours" else _flowkit)(Path(sample), Path(beads))
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))


def _spawn(mode: str, sample: Path, beads: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(sample), str(beads)],
                          capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cli(sample: Path, beads: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(REPO / ".venv" / "bin" / "mhladr"), "analyze", str(sample), "--beads", str(beads),
                    "--lot-values", ",".join(str(v) for v in LOT_A), "--json"],
                   capture_output=True, check=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "SAMPLE", "BEADS"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for events in args.sizes:
            sample, beads = _make(Path(tmp), events)
            ours = [_spawn("ours", sample, beads) for _ in range(args.repeat)]
            theirs = [_spawn("flowkit", sample, beads) for _ in range(args.repeat)]
            cli = [_cli(sample, beads) for _ in range(args.repeat)]
            best_ours = min(r["seconds"] for r in ours)
            best_fk = min(r["seconds"] for r in theirs)
            print(f"{events:>9,} events  ours {best_ours:.3f} s (peak RSS {max(r['peak_rss_mb'] for r in ours):.0f} MB, "
                  f"{ours[0]['monocytes']} monocytes)  flowkit {best_fk:.3f} s (peak RSS "
                  f"{max(r['peak_rss_mb'] for r in theirs):.0f} MB)  ratio flowkit/ours {best_fk / best_ours:.2f}  "
                  f"one 'mhladr analyze' process {min(cli):.2f} s")


if __name__ == "__main__":
    main()
