"""Benchmarks of a batch through Prefect and of ``watch`` (a script, not a test).

1. ``mhladr run`` on a folder of 40 files (8 bead tubes, 30 patient tubes, 2 broken files) with
   the Prefect server already up and an empty results database, against the one-process flowkit
   loop of ``baselines.py loop`` over the folder's patient tubes (load, compensate, fixed
   polygon, median), whole processes side by side (``timing``). Target: ratio <= 1.0. With the
   CPU time of each and ``floor_ratio`` (CPU time / cores / the loop's wall: the best ratio any
   scheduling of the same work could reach on this machine).
2. Orchestration share: the same folder through the same pipeline stages in one process without
   Prefect (``Processor`` with the same worker pool), against ``mhladr run``. Target: Prefect
   adds at most 10 % of the run's wall time.
3. ``mhladr watch`` latency from a file's last byte to its result stored. Target: p95 <= 1 s.

    .venv/bin/python benchmarks/bench_flows.py [--repeat 5] [--latency-files 20] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
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
IN_PROCESS = """
import sys
from pathlib import Path
from pipeline import workers
from pipeline.config import load_settings
from pipeline.processing import Processor
workers.warm_up()
inbox = Path(sys.argv[1])
proc = Processor(load_settings(), inbox / "registry.csv", inbox / "lots.csv", workers=workers.shared())
intake = proc.intake(sorted(inbox.glob("*.fcs")))
done = [*intake.results.values(), *proc.calibrate(intake.beads).values(), *proc.measure(intake.samples).values()]
done += [proc.duplicate(e, next(r for r in done if r.sha256 == e.sha256)) for e in intake.repeats]
done += proc.finish_pending(frozenset(intake.first))
proc.reports(done)
proc.push()
proc.screening()
proc.close()
workers.shared().close()
"""


def folder(root: Path) -> Path:
    """Every data_samples tube: bead tubes twice, patient tubes three times (only $FIL differs),
    plus a truncated and a non-FCS file, with the lot table and registry."""
    from data_samples.generate import fcs_bytes
    from data_samples.sample_set import build_tubes
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for tube in build_tubes():
        for copy in range(2 if tube.kind == "beads" else 3):
            name = tube.filename if copy == 0 else tube.filename.replace(".fcs", f"_r{copy}.fcs")
            (inbox / name).write_bytes(fcs_bytes(tube, name))
    (inbox / "BROKEN_truncated.fcs").write_bytes((inbox / "PT-0042_D07_HLADR.fcs").read_bytes()[:5000])
    (inbox / "BROKEN_not_fcs.fcs").write_bytes(b"not an FCS file\n" * 20)
    shutil.copy(DATA / "lots.csv", inbox / "lots.csv")
    shutil.copy(DATA / "registry.csv", inbox / "registry.csv")
    return inbox


def bench_run(root: Path, server_url: str, repeat: int) -> dict:
    inbox = folder(root)
    home = root / "home-run"
    env = {"MHLADR_HOME": str(home), "PREFECT_API_URL": server_url,
           "PREFECT_API_AUTH_STRING": auth_for(server_url) or ""}      # the server is locked

    def fresh() -> None:
        shutil.rmtree(home, ignore_errors=True)

    run = [MHLADR, "run", str(inbox), "--registry", str(inbox / "registry.csv")]
    ours, flowkit = compare(run, [PYTHON, BASELINES, "loop", str(inbox)], repeat, env=env, before_each=fresh)
    in_process, flows = compare([PYTHON, "-c", IN_PROCESS, str(inbox)], run, repeat, env=env, before_each=fresh)
    files = len(list(inbox.glob("*.fcs")))
    return {"files": files, "patient_tubes": len(list(inbox.glob("PT-*.fcs"))),
            "run_s": ours.seconds, "files_per_s": files / ours.seconds, "flowkit_loop_s": flowkit.seconds,
            "ratio": ours.seconds / flowkit.seconds, "target_ratio_max": 1.0, "run_peak_mib": ours.peak_mib,
            "run_peak_tree_mib": ours.peak_tree_mib, **cpu_figures(ours, flowkit),
            "in_process_s": in_process.seconds, "run_again_s": flows.seconds,
            "orchestration_share": max(0.0, 1.0 - in_process.seconds / flows.seconds),
            "target_orchestration_share_max": 0.10}


def _stored(store, sha256: str) -> bool:
    """Whether the file's result is stored (with its status and the patient's re-evaluation:
    one transaction)."""
    rec = store.files.original(sha256)
    return rec is not None and rec.status in ("measured", "qc_fail")


def bench_latency(root: Path, server_url: str, n: int, interval: float, command: str = "watch") -> dict:
    """Last byte to stored result of ``n`` tubes under ``mhladr watch`` or ``mhladr serve --inbox``."""
    from data_samples.generate import fcs_bytes
    from data_samples.sample_set import build_tubes
    from pipeline.config import load_settings
    from pipeline.store import open_store
    tubes = {t.filename: t for t in build_tubes()}
    beads, sample = tubes["BEADS_2026-03-12_lotA_CANTO.fcs"], tubes["PT-0042_D07_HLADR.fcs"]
    home, inbox = root / f"home-{command}", root / f"{command}-inbox"
    inbox.mkdir()
    (inbox / beads.filename).write_bytes(fcs_bytes(beads))
    env = dict(os.environ, MHLADR_HOME=str(home), PREFECT_API_URL=server_url, PREFECT_LOGGING_LEVEL="WARNING",
               PREFECT_API_AUTH_STRING=auth_for(server_url) or "",
               MHLADR_CONSOLE_PORT="0")
    inputs = ["--registry", str(DATA / "registry.csv"), "--lots", str(DATA / "lots.csv")]
    argv = ([MHLADR, "watch", str(inbox), *inputs, "--interval", str(interval)] if command == "watch"
            else [MHLADR, "serve", "--inbox", str(inbox), *inputs])      # serve polls every 0.25 s
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    latencies = []
    try:
        while not (inbox / "processed" / beads.filename).exists():
            if proc.poll() is not None:
                raise RuntimeError(f"mhladr {command} exited with {proc.returncode}")
            time.sleep(0.05)
        with open_store(load_settings(env={"MHLADR_HOME": str(home)})) as store:
            for i in range(n):
                name = f"PT-0042_D07_HLADR_{i:03d}.fcs"
                content = fcs_bytes(sample, name)
                with (inbox / name).open("wb") as fh:
                    fh.write(content)
                t0 = time.perf_counter()
                sha256 = hashlib.sha256(content).hexdigest()
                while not _stored(store, sha256):
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError(f"{name} not processed within 60 s")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    return {"command": command, "files": n, "poll_interval_s": interval if command == "watch" else 0.25,
            "p50_s": statistics.median(latencies), "p95_s": p95, "max_s": latencies[-1], "target_p95_s": 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency-files", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.2, help="watch poll interval (s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from flows.server import ensure_server, stop_server
    root = Path(tempfile.mkdtemp(prefix="mhladr-bench-flows-"))
    try:
        server = ensure_server(root / "home-server")
        report = {"run": bench_run(root, server.url, args.repeat),
                  "watch_latency": bench_latency(root, server.url, args.latency_files, args.interval)}
    finally:
        stop_server(root / "home-server")
        shutil.rmtree(root, ignore_errors=True)
    show(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
