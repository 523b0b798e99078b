"""Cost of ``mhladr audit verify`` on a store of 10,000 measurements (a script, not a test).

Builds a store the shape a busy trial would have (patients with five tubes each, a calibration
per instrument-day, one result in ten through technician review, every result queued for the
eCRF CSV), through the store's own writes (each audited with its row digest), then times:

- ``store.audit.verify()`` in-process (median of the repeats): the chain plus every row;
- ``mhladr audit verify --json`` as a whole process (start-up included), with its peak memory.

    .venv/bin/python benchmarks/bench_audit.py [--measurements 10000] [--backend sqlite|postgresql|both]
                                               [--repeat 3] [--json]

PostgreSQL: ``MHLADR_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
the store lives in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DO_NOT_TRACK", "1")

PER_PATIENT = 5
PER_CALIBRATION = 50
BATCH = 500


def build(store, measurements: int) -> dict[str, float]:
    """Fill ``store``; returns the build's wall time and rows per table."""
    from pipeline.eligibility import PatientFacts
    from pipeline.sinks.outbox import enqueue_results
    from science.qc import QC
    from tests.store_fixtures import calibration, measurement

    start = time.perf_counter()
    first_day = date(2026, 1, 1)
    patients = [PatientFacts(f"PT-{i:05d}", first_day + timedelta(days=i % 300), 8, True)
                for i in range(measurements // PER_PATIENT + 1)]
    store.patients.upsert(patients, today=first_day)
    calibration_ids: list[int] = []
    for n in range(0, measurements, BATCH):
        with store.write("bench", first_day + timedelta(days=330)) as tx:
            for i in range(n, min(n + BATCH, measurements)):
                patient = patients[i // PER_PATIENT]
                day = patient.icu_admission + timedelta(days=3 + 2 * (i % PER_PATIENT))
                if i % PER_CALIBRATION == 0:
                    cal = calibration(10**6 + i, day=day)
                    calibration_ids.append(store.calibrations.add_in(tx, cal, path=f"/in/beads-{i}.fcs", size=1).id)
                qc = QC("review", ("1,500 monocytes (fewer than 2000)",)) if i % 10 == 0 else QC()
                meas = replace(measurement(i, patient.patient_id, day, 3000.0 + (i * 37) % 20000, qc=qc),
                               file=f"/in/{patient.patient_id}_{i}.fcs")
                store.measurements.add_in(tx, meas, calibration_ids[-1], size=1)
    for mm in store.measurements.pending():
        store.measurements.review(mm.id, "approve", "smear checked", "tech-a", today=first_day + timedelta(days=330))
    enqueue_results(store, ("csv",))
    return {"build_s": time.perf_counter() - start}


def bench(url: str, measurements: int, repeat: int, home: Path) -> dict[str, object]:
    from benchmarks.timing import run_once
    from pipeline.config import load_settings
    from pipeline.store import open_store

    settings = load_settings(env={"MHLADR_HOME": str(home)}, database_url=url)
    with open_store(settings) as store:
        result: dict[str, object] = build(store, measurements)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            check = store.audit.verify()
            runs.append(time.perf_counter() - start)
        assert check.ok, check.problems[:3]
    cli = [run_once([sys.executable, "-m", "app.cli", "audit", "verify", "--json"],
                    {"MHLADR_HOME": str(home), "MHLADR_DATABASE_URL": url, "PYTHONPATH": str(REPO)})
           for _ in range(repeat)]
    result.update(measurements=measurements, entries=check.entries, rows=check.rows,
                  verify_s=statistics.median(runs), verify_best_s=min(runs),
                  cli_s=statistics.median(w for w, _, _, _ in cli), cli_peak_mib=max(p for _, p, _, _ in cli))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measurements", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from tests.store_fixtures import drop_postgres_schema, fresh_postgres_schema, postgres_url

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            results["sqlite"] = bench(f"sqlite:///{tmp}/bench.sqlite", args.measurements, args.repeat,
                                      Path(tmp) / "sqlite")
        if args.backend in ("postgresql", "both"):
            base, reason = postgres_url()
            if base is None:
                print(f"postgresql skipped: {reason}", file=sys.stderr)
            else:
                url, schema = fresh_postgres_schema(base)
                try:
                    results["postgresql"] = bench(url, args.measurements, args.repeat, Path(tmp) / "pg")
                finally:
                    drop_postgres_schema(base, schema)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for backend, r in results.items():
        print(f"{backend:<10} {r['measurements']:,} measurements, {r['rows']:,} rows, {r['entries']:,} audit entries: "
              f"verify {r['verify_s']:.2f} s in-process (best {r['verify_best_s']:.2f} s), "
              f"`mhladr audit verify` {r['cli_s']:.2f} s, peak {r['cli_peak_mib']:.0f} MiB "
              f"(store built in {r['build_s']:.0f} s)")


if __name__ == "__main__":
    main()
