"""Daily QC: the day's bead curves against each detector's history (Levey-Jennings, 2 SD)."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline.qc_trend import control_points, out_of_control
from pipeline.config import load_settings
from pipeline.store import open_store


@flow(name="mhladr-daily-qc", log_prints=False)
def daily_qc_flow(day: date | None = None) -> list[dict]:
    """Control points of ``day`` (default: today); out-of-control curves are flagged."""
    logger = get_run_logger()
    with open_store(load_settings()) as store:
        day = day or store.today()
        points = control_points(store.calibrations.list(), day)
    rows = [p.as_row() for p in points]
    flagged = out_of_control(points)
    if rows:
        create_table_artifact(table=rows, key="daily-qc-curves",
                              description=f"bead curves of {day.isoformat()} vs mean ± 2 SD of earlier curves")
    lines = [f"# Bead-curve QC {day.isoformat()}", ""]
    if not points:
        lines.append("No bead curve was acquired on this day.")
    elif not flagged:
        lines.append(f"{len(points)} curve(s), none beyond 2 SD of its detector's history.")
    else:
        lines.append(f"**{len(flagged)} of {len(points)} curve(s) beyond 2 SD:**")
        lines += [f"- {p.instrument} {p.serial} {p.channel} (calibration {p.calibration_id}): "
                  + "; ".join(p.flags) for p in flagged]
    lines += [f"- {p.instrument} {p.serial} {p.channel} (calibration {p.calibration_id}): no limits, {p.note}"
              for p in points if p.note]
    create_markdown_artifact(markdown="\n".join(lines) + "\n", key="daily-qc",
                             description="Levey-Jennings check of the day's bead curves")
    for p in flagged:
        logger.warning("bead curve %s on %s %s out of control: %s", p.calibration_id,
                       p.instrument, p.serial, "; ".join(p.flags))
    return rows
