"""Benchmark of a backlog: ``mhladr run`` on hundreds of generated tubes (a script, not a test).

A lab with a backlog, or a re-analysis after a software change, runs hundreds of tubes at once.
The folder holds ``--tubes`` patient tubes (default 300, distinct contents, 40,000 events each,
from the project's generator ``data_samples``) acquired on several days on three instruments,
with one QuantiBRITE bead tube per instrument and day, the lot table and a registry. Each run
starts on a fresh ``MHLADR_HOME`` with the Prefect server already up (every run is still a
Prefect flow run with its task runs, artifacts and logs), and alternates with the one-process
flowkit loop of ``baselines.py loop`` over the same patient tubes (``timing``).

Reported: the median wall time of each at ``--tubes`` and at ``--small`` tubes, the ratio
(target <= 0.6 on 2 cores at ``--tubes``), the fixed and per-tube marginal costs of each fitted
from the two sizes (time = fixed + n * marginal), the same for CPU time, and the peak resident
memory of the whole process tree (the command, its forkserver and workers; target < 600 MiB).
CPU time is the machine's busy time the run causes (``timing``); ``floor_ratio`` = CPU time /
cores / the loop's wall time, the best ratio any scheduling of the same work could reach here. Generated files live
in a temporary folder, removed at the end.

    .venv/bin/python benchmarks/bench_backlog.py [--tubes 300] [--small 60] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("DO_NOT_TRACK", "1")
from timing import compare, cpu_figures, show  # noqa: E402
from flows.server import auth_for  # noqa: E402

DATA = REPO / "data_samples"
MHLADR = str(REPO / ".venv" / "bin" / "mhladr")
PYTHON = sys.executable
BASELINES = str(REPO / "benchmarks" / "baselines.py")
SEED = 20261207
FIRST_DAY = date(2026, 4, 6)
DAYS_PER_INSTRUMENT = 4
TARGET_RATIO = 0.6
TARGET_PEAK_MIB = 600.0


def backlog(root: Path, tubes: int, seed: int = SEED) -> Path:
    """A folder of ``tubes`` patient tubes (two per patient, on different days of one instrument)
    and the bead tube of each instrument and day they were acquired on, plus lots and registry."""
    import numpy as np

    from data_samples.generate import make_bead_tube, make_patient_tube, write_tube
    from data_samples.instruments import INSTRUMENTS
    from data_samples.sample_set import LOTS

    rng = np.random.default_rng(seed)
    inbox = root / f"backlog-{tubes}"
    inbox.mkdir(parents=True)
    instruments = list(INSTRUMENTS.values())
    days = [(instrument, FIRST_DAY + timedelta(days=d), "lotA" if d % 2 == 0 else "lotB")
            for d in range(DAYS_PER_INSTRUMENT) for instrument in instruments]
    used: set[int] = set()
    registry = []
    for k in range(tubes):
        slot = (k // 2 + (k % 2) * len(instruments)) % len(days)     # a patient's 2nd tube: 1 day later
        instrument, day, _ = days[slot]
        used.add(slot)
        patient = f"PT-{5000 + k // 2:04d}"
        admission = FIRST_DAY - timedelta(days=int(2 + (k // 2) % 6))
        if k % 2 == 0:
            registry.append([patient, f"{admission.isoformat()}T07:30", int(4 + (k // 2) % 9), "yes", "", ""])
        abc = float(np.exp(rng.uniform(np.log(2_000), np.log(30_000))))
        icu_day = (day - admission).days
        write_tube(make_patient_tube(instrument, abc=abc, seed=seed + 1000 + k, patient_id=patient,
                                     collection_date=day, icu_admission=admission,
                                     acquired=datetime(day.year, day.month, day.day, 9) + timedelta(minutes=k),
                                     filename=f"{patient}_D{icu_day:02d}_{instrument.key}_{k:04d}.fcs"),
                   inbox / f"{patient}_D{icu_day:02d}_{instrument.key}_{k:04d}.fcs")
    for slot in sorted(used):
        instrument, day, lot = days[slot]
        name = f"BEADS_{day.isoformat()}_{lot}_{instrument.key}.fcs"
        write_tube(make_bead_tube(instrument, LOTS[lot], seed=seed + slot, lot=lot,
                                  acquired=datetime(day.year, day.month, day.day, 8), filename=name),
                   inbox / name)
    shutil.copy(DATA / "lots.csv", inbox / "lots.csv")
    with (inbox / "registry.csv").open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["patient_id", "icu_admission", "sofa_24h", "mechanical_ventilation", "exclusion",
                         "randomized_at"])
        writer.writerows(registry)
    return inbox


def subset(big: Path, root: Path, tubes: int) -> Path:
    """The first ``tubes`` patient tubes of ``big`` (in generation order) and its bead tubes,
    hard-linked (the same contents, no copy), with its lots and registry."""
    inbox = root / f"backlog-{tubes}"
    inbox.mkdir(parents=True)
    patients = sorted(big.glob("PT-*.fcs"), key=lambda p: p.stem.rsplit("_", 1)[1])[:tubes]
    for path in [*patients, *big.glob("BEADS_*.fcs")]:
        os.link(path, inbox / path.name)
    for name in ("lots.csv", "registry.csv"):
        shutil.copy(big / name, inbox / name)
    return inbox


def bench_size(inbox: Path, root: Path, server_url: str, repeat: int) -> dict:
    """``mhladr run`` (fresh home each time) against the flowkit loop over the same tubes."""
    home = root / "home-run"
    env = {"MHLADR_HOME": str(home), "PREFECT_API_URL": server_url,
           "PREFECT_API_AUTH_STRING": auth_for(server_url) or ""}      # the server is locked

    def fresh() -> None:
        shutil.rmtree(home, ignore_errors=True)

    run = [MHLADR, "run", str(inbox), "--registry", str(inbox / "registry.csv")]
    ours, flowkit = compare(run, [PYTHON, BASELINES, "loop", str(inbox)], repeat, env=env, before_each=fresh)
    return {"patient_tubes": len(list(inbox.glob("PT-*.fcs"))), "bead_tubes": len(list(inbox.glob("BEADS_*.fcs"))),
            "run_s": ours.seconds, "flowkit_loop_s": flowkit.seconds, "ratio": ours.seconds / flowkit.seconds,
            "run_peak_tree_mib": ours.peak_tree_mib, "loop_peak_tree_mib": flowkit.peak_tree_mib,
            **cpu_figures(ours, flowkit)}


def fit(small: dict, large: dict, key: str) -> tuple[float, float]:
    """(fixed s, marginal s per patient tube) of ``time = fixed + n * marginal`` through two sizes."""
    n1, n2 = small["patient_tubes"], large["patient_tubes"]
    marginal = (large[key] - small[key]) / (n2 - n1)
    return small[key] - n1 * marginal, marginal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tubes", type=int, default=300, help="patient tubes of the backlog")
    parser.add_argument("--small", type=int, default=60, help="patient tubes of the second size (for the fit)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.small < args.tubes:
        parser.error("--small must be between 0 and --tubes")
    from flows.server import ensure_server, stop_server
    root = Path(tempfile.mkdtemp(prefix="mhladr-bench-backlog-"))
    try:
        big = backlog(root, args.tubes)
        small = subset(big, root, args.small)
        server = ensure_server(root / "home-server")
        sizes = {"small": bench_size(small, root, server.url, args.repeat),
                 "backlog": bench_size(big, root, server.url, args.repeat)}
    finally:
        stop_server(root / "home-server")
        shutil.rmtree(root, ignore_errors=True)
    run_fixed, run_marginal = fit(sizes["small"], sizes["backlog"], "run_s")
    loop_fixed, loop_marginal = fit(sizes["small"], sizes["backlog"], "flowkit_loop_s")
    cpu_fixed, cpu_marginal = fit(sizes["small"], sizes["backlog"], "run_cpu_s")
    loop_cpu_fixed, loop_cpu_marginal = fit(sizes["small"], sizes["backlog"], "loop_cpu_s")
    report = {**sizes,
              "fit": {"run_fixed_s": run_fixed, "run_marginal_ms": 1000 * run_marginal,
                      "loop_fixed_s": loop_fixed, "loop_marginal_ms": 1000 * loop_marginal,
                      "run_cpu_fixed_s": cpu_fixed, "run_cpu_marginal_ms": 1000 * cpu_marginal,
                      "loop_cpu_fixed_s": loop_cpu_fixed, "loop_cpu_marginal_ms": 1000 * loop_cpu_marginal},
              "targets": {"ratio_max": TARGET_RATIO, "ratio": sizes["backlog"]["ratio"],
                          "peak_tree_mib_max": TARGET_PEAK_MIB,
                          "peak_tree_mib": sizes["backlog"]["run_peak_tree_mib"],
                          "load_1min": os.getloadavg()[0], "cores": os.cpu_count()}}
    show(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
