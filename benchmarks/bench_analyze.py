"""Benchmark: whole processes, side by side on the same tube (see ``timing``).

- ``mhladr analyze`` of a 200,000-event tube (reading both tubes, bead fit, gates, AB/C, QC)
  against the flowkit-only script of ``baselines.py tube`` (load, compensate, one fixed polygon,
  median PE). Target: ratio <= 1.0.
- ``mhladr inspect`` of the same tube against flowio's ``FlowData``. Target: ratio <= 4.
- ``mhladr analyze`` of a 1,000,000-event tube: peak memory. Target: < 400 MiB.

Run: ``.venv/bin/python benchmarks/bench_analyze.py [--repeat 7] [--json]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from timing import compare, show  # noqa: E402

LOT_A = (474.0, 5359.0, 23843.0, 62336.0)
MHLADR = str(REPO / ".venv" / "bin" / "mhladr")
PYTHON = sys.executable
BASELINES = str(REPO / "benchmarks" / "baselines.py")


def make(folder: Path, events: int) -> tuple[Path, Path]:
    from data_samples.generate import CANTO, make_bead_tube, make_patient_tube, write_tube
    beads = write_tube(make_bead_tube(CANTO, LOT_A, seed=1, filename="BEADS_2026-03-12_lotA_CANTO.fcs"), folder)
    sample = write_tube(make_patient_tube(CANTO, abc=6000.0, events=events, seed=2, patient_id="PT-0700",
                                          collection_date=date(2026, 3, 12), icu_admission=date(2026, 3, 6)),
                        folder / f"PT-0700_D06_{events}.fcs")
    return sample, beads


def analyze_argv(sample: Path, beads: Path) -> list[str]:
    return [MHLADR, "analyze", str(sample), "--beads", str(beads), "--lot-values", ",".join(map(str, LOT_A)),
            "--json"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sample, beads = make(Path(tmp), 200_000)
        ours, flowkit = compare(analyze_argv(sample, beads), [PYTHON, BASELINES, "tube", str(sample)], args.repeat)
        report["analyze_200k"] = {"ours_s": ours.seconds, "flowkit_s": flowkit.seconds,
                                  "ratio": ours.seconds / flowkit.seconds, "target_ratio_max": 1.0,
                                  "ours_peak_mib": ours.peak_mib, "flowkit_peak_mib": flowkit.peak_mib}
        ours, flowio = compare([MHLADR, "inspect", str(sample), "--json"], [PYTHON, BASELINES, "inspect", str(sample)],
                               args.repeat)
        report["inspect_200k"] = {"ours_s": ours.seconds, "flowio_s": flowio.seconds,
                                  "ratio": ours.seconds / flowio.seconds, "target_ratio_max": 4.0,
                                  "ours_peak_mib": ours.peak_mib, "flowio_peak_mib": flowio.peak_mib}
        big, _ = make(Path(tmp), 1_000_000)
        ours, flowkit = compare(analyze_argv(big, beads), [PYTHON, BASELINES, "tube", str(big)], max(3, args.repeat // 2))
        report["analyze_1M"] = {"ours_s": ours.seconds, "flowkit_s": flowkit.seconds,
                                "ratio": ours.seconds / flowkit.seconds, "ours_peak_mib": ours.peak_mib,
                                "flowkit_peak_mib": flowkit.peak_mib, "target_peak_mib_max": 400}
    show(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
