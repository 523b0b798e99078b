"""Tubes with one named pre-analytical or set-up fault, for tests, benchmarks and reference sets.

``faulty_tube(kind, instrument, ...)`` makes one patient tube of ``kind`` (see ``KINDS``)
with its ground truth (``truth['fault']`` names the kind, ``truth['expected_qc']`` what a
careful lab calls it). The number itself stays right except where the fault changes the
cells (a failed CD14 stain has no monocytes to find).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from data_samples.generate import Instrument, Tube, make_patient_tube

KINDS = ("no_spillover", "late_hours", "late_days", "failed_cd14", "bead_carryover", "above_top_bead")
FAILED_CD14 = 400.0              # CD14 molecules per monocyte when the CD14 stain failed (about autofluorescence)


def without_spillover(tube: Tube) -> Tube:
    """The same tube as an export that lost its $SPILLOVER (data stay uncompensated)."""
    truth = dict(tube.truth) | {"fault": "no_spillover"}
    return dataclasses.replace(tube, write_spillover=False, truth=truth)


def faulty_tube(kind: str, instrument: Instrument, *, abc: float = 7000.0, seed: int = 0,
                patient_id: str = "PT-0900", acquired: datetime = datetime(2026, 3, 12, 10, 0),
                filename: str | None = None, **options: object) -> Tube:
    """One tube with the fault ``kind``; ``options`` go to :func:`make_patient_tube`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    opts: dict[str, object] = {"seed": seed, "patient_id": patient_id, "acquired": acquired,
                               "filename": filename, "abc": abc} | options
    expected = "review"
    if kind == "late_hours":
        opts["collected_at"] = acquired - timedelta(hours=9)
    elif kind == "late_days":
        opts["collection_date"] = (acquired - timedelta(days=2)).date()
    elif kind == "failed_cd14":
        opts["monocyte_cd14"] = FAILED_CD14
        expected = "fail"
    elif kind == "bead_carryover":
        opts["carryover_beads"] = 0.04
        expected = "pass"
    elif kind == "above_top_bead":
        opts["abc"] = 75000.0
    tube = make_patient_tube(instrument, **opts)  # type: ignore[arg-type]
    if kind == "no_spillover":
        tube = without_spillover(tube)
    tube.truth.update({"fault": kind, "expected_qc": expected})
    return tube
