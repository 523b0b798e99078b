"""Results stored whole: a calibration's full record in one JSON column, a measurement's notes
and analysis time in their own columns.

Rows written by 0001 are converted here, once: the calibration record is rebuilt from the old
columns (what 0001 did not keep -- the fit's residual SD, the bead histogram, the gate counts,
the time of day of the acquisition -- stays empty), and ``notes``/``analysed_at`` move out of ``gates``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from alembic import op

from pipeline.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD_CALIBRATION_COLUMNS = ("bead_values", "slope", "intercept", "r2", "covariance", "peaks", "qc_reasons")


def _legacy_record(row: Any) -> dict[str, Any]:
    """The 0002 calibration record of a row written by 0001."""
    peaks = list(row.peaks or [])
    fitted = [p for p in peaks if p.get("status", "fitted") == "fitted" and p.get("fluorescence")]
    fluorescence = [float(p["fluorescence"]) for p in fitted]
    curve = None
    if len(fitted) >= 2 and row.slope == row.slope:
        curve = {"slope": row.slope, "intercept": row.intercept, "r2": row.r2, "n_points": len(fitted),
                 "residual_sd": None, "covariance": row.covariance or [[None, None], [None, None]],
                 "f_min": min(fluorescence), "f_max": max(fluorescence)}
    populations = [{"level": i, "bead_value": p.get("bead_value"), "status": p.get("status", "fitted"),
                    "fluorescence": p.get("fluorescence"), "events": int(p.get("events") or 0),
                    "cv": p.get("cv"), "residual": p.get("residual"), "reason": None}
                   for i, p in enumerate(peaks)]
    day = row.acquisition_date
    acquired = f"{day.isoformat()}T00:00:00" if day is not None and day.year > 1 else None
    return {"key": {"instrument": row.instrument, "serial": row.serial, "channel": row.channel,
                    "voltage": row.voltage, "gain": row.gain, "acquired": acquired, "lot": row.lot,
                    "sha256": row.file_sha256, "scale": None},
            "statistic": row.statistic, "bead_values": list(row.bead_values), "populations": populations,
            "extra_populations": [], "curve": curve,
            "qc": {"status": row.qc_status, "reasons": list(row.qc_reasons)}, "gate": None,
            "histogram": {"start": 0.0, "step": 1.0, "counts": []}, "clustering_channels": []}


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("calibrations") as batch:
        batch.add_column(sa.Column("record", sa.JSON))
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("notes", sa.JSON))
        batch.add_column(sa.Column("analysed_at", UTCDateTime))

    calibrations = sa.table("calibrations", sa.column("acquisition_date", sa.Date), *(sa.column(c) for c in (
        "id", "instrument", "serial", "channel", "voltage", "gain", "lot", "file_sha256", "qc_status",
        "statistic")), *(sa.column(c, sa.JSON) for c in ("bead_values", "covariance", "peaks", "qc_reasons")),
        sa.column("slope"), sa.column("intercept"), sa.column("r2"), sa.column("record", sa.JSON))
    for row in bind.execute(sa.select(calibrations)).all():
        bind.execute(calibrations.update().where(calibrations.c.id == row.id).values(record=_legacy_record(row)))
    measurements = sa.table("measurements", sa.column("id"), sa.column("gates", sa.JSON),
                            sa.column("notes", sa.JSON), sa.column("analysed_at", UTCDateTime),
                            sa.column("created", UTCDateTime))
    for row in bind.execute(sa.select(measurements)).all():
        gates = dict(row.gates or {})
        notes = list(gates.pop("notes", []) or [])
        analysed = gates.pop("analysed_at", None)
        gates.pop("calibration_file_sha256", None)
        at = datetime.fromisoformat(analysed) if analysed else row.created
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        bind.execute(measurements.update().where(measurements.c.id == row.id)
                     .values(gates=gates, notes=notes, analysed_at=at))

    with op.batch_alter_table("calibrations") as batch:
        batch.alter_column("record", existing_type=sa.JSON, nullable=False)
        for column in _OLD_CALIBRATION_COLUMNS:
            batch.drop_column(column)
    with op.batch_alter_table("measurements") as batch:
        batch.alter_column("notes", existing_type=sa.JSON, nullable=False)
        batch.alter_column("analysed_at", existing_type=UTCDateTime, nullable=False)


def downgrade() -> None:
    raise NotImplementedError("0002 rewrites results whole; restore a backup to go back to 0001")
