"""Whole-process timing for the benchmarks: each job is a fresh process, ours and the baseline
alternate (so a busy moment of a shared machine hits both), the median of the repeats counts,
and peak resident memory is the process's own (GNU time's ``%M``: the largest of the process and
the children it waited for)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

REPO_ENV = {"DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"     # GNU time (Debian package "time")


@dataclass(frozen=True)
class Timing:
    seconds: float          # median wall time
    best: float
    peak_mib: float         # largest peak RSS of one run

    def __str__(self) -> str:
        return f"{self.seconds:6.2f} s (best {self.best:.2f} s, peak {self.peak_mib:.0f} MiB)"


def run_once(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env={**os.environ, **REPO_ENV, **(env or {})}, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024


def compare(ours: Sequence[str], baseline: Sequence[str], repeat: int, env: dict[str, str] | None = None,
            before_each: Callable[[], None] | None = None) -> tuple[Timing, Timing]:
    """Alternate ``ours`` and ``baseline`` ``repeat`` times (``before_each`` before every run);
    their timings."""
    mine: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(repeat):
        for runs, argv in ((mine, ours), (theirs, baseline)):
            if before_each:
                before_each()
            runs.append(run_once(argv, env))

    def timing(runs: list[tuple[float, float]]) -> Timing:
        return Timing(statistics.median(w for w, _ in runs), min(w for w, _ in runs), max(p for _, p in runs))

    return timing(mine), timing(theirs)


def show(report: dict[str, dict], as_json: bool) -> None:
    """Print a benchmark report: one JSON document, or one line per section."""
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for section, values in report.items():
        print(section + "  " + "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in values.items()))
