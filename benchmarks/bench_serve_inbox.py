"""``mhladr serve --inbox`` latency beside ``mhladr watch``'s (a script, not a test): 20 patient
tubes written one at a time into the inbox with the bead tube of their day already calibrated,
time from each file's last byte to its result stored (file status and patient re-evaluation in
one transaction). Both run against one Prefect server, each on a fresh home, poll interval
0.25 s (the default of both). Target (issue 17): serve's p95 <= 1 s, like watch.

    .venv/bin/python benchmarks/bench_serve_inbox.py [--files 20] [--json]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_flows import bench_latency  # noqa: E402
from timing import show  # noqa: E402

POLL = 0.25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from flows.server import ensure_server, stop_server
    root = Path(tempfile.mkdtemp(prefix="mhladr-bench-serve-"))
    try:
        server = ensure_server(root / "home-server")
        report = {command: bench_latency(root, server.url, args.files, POLL, command)
                  for command in ("serve", "watch")}
    finally:
        stop_server(root / "home-server")
        shutil.rmtree(root, ignore_errors=True)
    show(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
