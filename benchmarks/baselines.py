"""The plain-library baselines the benchmarks compare against, each run as its own process:

    python benchmarks/baselines.py tube SAMPLE        flowkit: load, compensate, one fixed polygon, median PE
    python benchmarks/baselines.py loop FOLDER        the same for every PT-*.fcs of a folder, one process
    python benchmarks/baselines.py inspect FILE       flowio: FlowData(FILE) (TEXT and events)
"""

from __future__ import annotations

import sys
from pathlib import Path


def tube(path: Path, fk: object) -> float:
    """Median PE of the events in one fixed SSC vs CD14 polygon, compensated with the file's matrix."""
    import numpy as np

    sample = fk.Sample(str(path))
    names = sample.pnn_labels
    spill = sample.metadata.get("spillover") or sample.metadata.get("spill")
    source = "raw"
    if spill:
        sample.apply_compensation(spill)
        source = "comp"
    cd14 = next(n for n in names if n.startswith("PerCP") or n.startswith("FL3"))
    ssc = next(n for n in names if n.startswith("SSC"))
    pe = next(n for n in names if n.startswith("PE") or n.startswith("FL2"))
    strategy = fk.GatingStrategy()
    dims = [fk.Dimension(cd14, compensation_ref="FCS" if spill else "uncompensated"),
            fk.Dimension(ssc, compensation_ref="uncompensated")]
    strategy.add_gate(fk.gates.PolygonGate("monocytes", dims, [[8e3, 3e4], [2e5, 3e4], [2e5, 9e4], [8e3, 9e4]]),
                      gate_path=("root",))
    inside = strategy.gate_sample(sample).get_gate_membership("monocytes")
    values = sample.get_events(source=source)[:, sample.get_channel_index(pe)]
    return float(np.median(values[inside])) if inside.any() else float("nan")


def main(argv: list[str]) -> int:
    what, target = argv[0], Path(argv[1])
    if what == "inspect":
        import flowio
        flowio.FlowData(str(target))
        return 0
    import flowkit
    paths = [target] if what == "tube" else sorted(target.glob("PT-*.fcs"))
    for path in paths:
        tube(path, flowkit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
