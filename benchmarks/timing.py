"""Whole-process timing for the benchmarks: each job is a fresh process, ours and the baseline
alternate (so a busy moment of a shared machine hits both), the median of the repeats counts.
Peak resident memory is given twice: the process's own (GNU time's ``%M``: the largest of the
process and the children it waited for) and the whole process tree's (the sum of the RSS of the
process and all its descendants, e.g. a forkserver and its workers, sampled every 50 ms).
CPU time is the whole machine's busy time during the run (``/proc/stat``) less the background
rate measured just before it: it counts every process the run keeps busy, its workers and the
Prefect server answering it included, which no per-process counter sees (a forkserver's workers
are not the command's waited-for children). On ``cores`` cores no scheduling can finish a run
in less than its CPU time / cores: ``floor`` below."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

REPO_ENV = {"DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"     # GNU time (Debian package "time")


@dataclass(frozen=True)
class Timing:
    seconds: float          # median wall time
    best: float
    peak_mib: float         # largest peak RSS of one run (the process's own)
    peak_tree_mib: float = 0.0      # largest sum of RSS over the process tree of one run
    cpu_s: float = 0.0              # median busy CPU seconds of the machine caused by one run

    def __str__(self) -> str:
        return (f"{self.seconds:6.2f} s (best {self.best:.2f} s, cpu {self.cpu_s:.2f} s, peak {self.peak_mib:.0f} MiB, "
                f"tree {self.peak_tree_mib:.0f} MiB)")

    def floor(self, cores: int | None = None) -> float:
        """The shortest wall time this much CPU allows on ``cores`` cores (default: this machine's)."""
        return self.cpu_s / (cores or os.cpu_count() or 1)


def busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``: user, nice, system,
    irq, softirq, steal excluded)."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, fh.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def background_rate(seconds: float = 0.5) -> float:
    """Busy CPU seconds per second of the machine while nothing of ours runs."""
    before = busy_cpu_s()
    time.sleep(seconds)
    return (busy_cpu_s() - before) / seconds


class TreePeak:
    """The largest summed RSS (MiB) of a process's descendants, sampled in a thread until
    :meth:`stop`."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.mib = 0.0
        self._pid, self._every_s = pid, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil     # flowkit's dependency; only the benchmarks use it here

        try:
            root = psutil.Process(self._pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                procs = root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.mib = max(self.mib, total / 2 ** 20)
            self._stop.wait(self._every_s)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.mib


def run_once(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, float, float]:
    """(wall seconds, peak RSS MiB of the process, peak summed RSS MiB of its tree, busy CPU
    seconds of the machine it caused) of one process."""
    rate = background_rate()
    cpu = busy_cpu_s()
    start = time.perf_counter()
    proc = subprocess.Popen([TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **REPO_ENV, **(env or {})}, text=True)
    tree = TreePeak(proc.pid)
    _, stderr = proc.communicate()
    wall = time.perf_counter() - start
    cpu = busy_cpu_s() - cpu - rate * wall
    tree_mib = tree.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({proc.returncode}): {stderr[-2000:]}")
    return wall, int(stderr.strip().splitlines()[-1]) / 1024, tree_mib, max(cpu, 0.0)


def compare(ours: Sequence[str], baseline: Sequence[str], repeat: int, env: dict[str, str] | None = None,
            before_each: Callable[[], None] | None = None) -> tuple[Timing, Timing]:
    """Alternate ``ours`` and ``baseline`` ``repeat`` times (``before_each`` before every run);
    their timings."""
    mine: list[tuple[float, float, float, float]] = []
    theirs: list[tuple[float, float, float, float]] = []
    for _ in range(repeat):
        for runs, argv in ((mine, ours), (theirs, baseline)):
            if before_each:
                before_each()
            runs.append(run_once(argv, env))

    def timing(runs: list[tuple[float, float, float, float]]) -> Timing:
        return Timing(statistics.median(w for w, _, _, _ in runs), min(w for w, _, _, _ in runs),
                      max(p for _, p, _, _ in runs), max(t for _, _, t, _ in runs),
                      statistics.median(c for _, _, _, c in runs))

    return timing(mine), timing(theirs)


def cpu_figures(ours: Timing, baseline: Timing) -> dict[str, float]:
    """What the CPU says of a ratio: each side's CPU seconds, and ``floor_ratio``, the smallest
    ratio of wall times any scheduling of our run could reach on this machine's cores (its CPU
    time / cores, over the baseline's wall time)."""
    return {"run_cpu_s": ours.cpu_s, "loop_cpu_s": baseline.cpu_s, "cpu_ratio": ours.cpu_s / baseline.cpu_s,
            "floor_ratio": ours.floor() / baseline.seconds, "cores": os.cpu_count() or 1}


def show(report: dict[str, dict], as_json: bool) -> None:
    """Print a benchmark report: one JSON document, or one line per section."""
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for section, values in report.items():
        print(section + "  " + "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in values.items()))
