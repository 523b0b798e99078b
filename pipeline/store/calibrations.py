"""Bead calibrations: the validity key as columns, the whole calibration as a JSON record that
loads back exactly (JSON keeps every float's repr; NaN, which JSON cannot hold, is stored as null
where a field may be NaN and read back as NaN)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Sequence

from sqlalchemy import select

from calibration.bead_gate import GateCounts
from calibration.curve import Curve
from calibration.key import CalibrationKey
from calibration.result import Calibration, LogHistogram, Population
from calibration.scale import ChannelScale, scale_findings
from pipeline import __version__
from pipeline.acquisition import same_setting
from pipeline.store import files
from pipeline.store import models as m
from pipeline.store.records import StoredCalibration
from pipeline.store.tx import Transactions, Tx
from science.qc import QC


def _out(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _in(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _population(p: Population) -> dict[str, Any]:
    return {"level": p.level, "bead_value": _out(p.bead_value), "status": p.status,
            "fluorescence": _out(p.fluorescence), "events": p.events, "cv": _out(p.cv),
            "residual": _out(p.residual), "reason": p.reason}


def _population_from(d: dict[str, Any]) -> Population:
    return Population(level=d["level"], bead_value=_in(d["bead_value"]), status=d["status"],
                      fluorescence=d["fluorescence"], events=d["events"], cv=d["cv"],
                      residual=d["residual"], reason=d["reason"])


def to_record(cal: Calibration) -> dict[str, Any]:
    """The whole calibration as JSON-compatible values (the ``record`` column)."""
    key, curve, gate = cal.key, cal.curve, cal.gate
    return {
        "key": {"instrument": key.instrument, "serial": key.serial, "channel": key.channel,
                "voltage": key.voltage, "gain": key.gain,
                "acquired": key.acquired.isoformat() if key.acquired else None,
                "lot": key.lot, "sha256": key.sha256, "scale": key.scale.as_dict() if key.scale else None,
                "compensation": key.compensation},
        "statistic": cal.statistic,
        "bead_values": list(cal.bead_values),
        "populations": [_population(p) for p in cal.populations],
        "extra_populations": [_population(p) for p in cal.extra_populations],
        "curve": None if curve is None else {
            "slope": curve.slope, "intercept": curve.intercept, "r2": _out(curve.r2), "n_points": curve.n_points,
            "residual_sd": _out(curve.residual_sd),
            "covariance": [[_out(c) for c in row] for row in curve.covariance],
            "f_min": curve.f_min, "f_max": curve.f_max},
        "qc": {"status": cal.qc.status, "reasons": list(cal.qc.reasons)},
        "gate": None if gate is None else {
            "total": gate.total, "at_range_edge": gate.at_range_edge, "doublets": gate.doublets,
            "outside_cluster": gate.outside_cluster, "kept": gate.kept, "notes": list(gate.notes)},
        "histogram": {"start": cal.histogram.start, "step": cal.histogram.step,
                      "counts": list(cal.histogram.counts)},
        "clustering_channels": list(cal.clustering_channels),
    }


def from_record(r: dict[str, Any]) -> Calibration:
    """The calibration :func:`to_record` stored, as it was."""
    k, c, g, h = r["key"], r["curve"], r["gate"], r["histogram"]
    curve = None if c is None else Curve(
        slope=c["slope"], intercept=c["intercept"], r2=_in(c["r2"]), n_points=c["n_points"],
        residual_sd=_in(c["residual_sd"]),
        covariance=tuple(tuple(_in(v) for v in row) for row in c["covariance"]),  # type: ignore[arg-type]
        f_min=c["f_min"], f_max=c["f_max"])
    return Calibration(
        key=CalibrationKey(instrument=k["instrument"], serial=k["serial"], channel=k["channel"],
                           voltage=k["voltage"], gain=k["gain"],
                           acquired=datetime.fromisoformat(k["acquired"]) if k["acquired"] else None,
                           lot=k["lot"], sha256=k["sha256"],
                           scale=ChannelScale(**k["scale"]) if k["scale"] else None,
                           compensation=k.get("compensation")),
        statistic=r["statistic"], bead_values=tuple(r["bead_values"]),
        populations=tuple(_population_from(p) for p in r["populations"]),
        extra_populations=tuple(_population_from(p) for p in r["extra_populations"]),
        curve=curve, qc=QC(r["qc"]["status"], tuple(r["qc"]["reasons"])),
        gate=None if g is None else GateCounts(total=g["total"], at_range_edge=g["at_range_edge"],
                                               doublets=g["doublets"], outside_cluster=g["outside_cluster"],
                                               kept=g["kept"], notes=tuple(g["notes"])),
        histogram=LogHistogram(h["start"], h["step"], tuple(h["counts"])),
        clustering_channels=tuple(r["clustering_channels"]))


def stored(row: m.Calibration) -> StoredCalibration:
    return StoredCalibration(row.id, row.created, from_record(row.record))


def acquisition_day(cal: Calibration) -> date:
    """The day a calibration is valid for (``date.min`` when the bead file had no date)."""
    return cal.key.acquired.date() if cal.key.acquired else date.min


class Calibrations:
    """The ``calibrations`` table."""

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def add(self, cal: Calibration, *, path: str | None = None, size: int | None = None,
            actor: str = "pipeline", note: str | None = None) -> StoredCalibration:
        """Store a bead calibration (idempotent per file and channel); the bead file's row follows
        (``calibrated`` or ``qc_fail``; recorded when ``path`` names a file not seen yet), all in
        one transaction."""
        return self.add_many([(cal, path, size)], actor=actor, note=note)[0]

    def add_many(self, items: Sequence[tuple[Calibration, str | None, int | None]], *, actor: str = "pipeline",
                 note: str | None = None) -> list[StoredCalibration]:
        """:meth:`add` for several (calibration, path, size) at once, in one transaction."""
        with self.store.write(actor) as tx:
            return [self.add_in(tx, cal, path=path, size=size, note=note) for cal, path, size in items]

    def add_in(self, tx: Tx, cal: Calibration, *, path: str | None = None, size: int | None = None,
               note: str | None = None) -> StoredCalibration:
        """:meth:`add` inside a transaction the caller holds."""
        key = cal.key
        s = tx.session
        existing = s.scalars(select(m.Calibration).where(
            m.Calibration.file_sha256 == key.sha256, m.Calibration.channel == key.channel)).first()
        if existing is not None:
            return stored(existing)
        files.settle_in(tx, key.sha256 or "", "beads", cal.qc, path=path, size=size, note=note)
        row = m.Calibration(
            instrument=key.instrument or "", serial=key.serial or "", channel=key.channel or "",
            voltage=key.voltage, gain=key.gain, acquisition_date=acquisition_day(cal),
            lot=key.lot or "", file_sha256=key.sha256 or "", qc_status=cal.qc.status,
            statistic=cal.statistic, record=to_record(cal), software_version=__version__,
            created=tx.now())
        after = {c.name: getattr(row, c.name) for c in m.Calibration.__table__.columns
                 if c.name not in {"id", "created"}}
        tx.save(row, "store_calibration", "calibration", None, after)
        return stored(row)

    def find(self, instrument: str, serial: str, channel: str, voltage: float | None, gain: float | None,
             day: date, scale: ChannelScale | None = None) -> StoredCalibration | None:
        """The calibration valid for a tube: same instrument, serial, channel, PE voltage, gain
        and scale (:func:`calibration.scale.scale_findings`, when both are known), same acquisition
        day, QC not ``fail``; a ``pass`` beats a ``review``, then the latest."""
        candidates = [c for c in self.on_day(instrument, serial, channel, day)
                      if c.calibration.qc.status != "fail" and same_setting(c.calibration.key.voltage, voltage)
                      and same_setting(c.calibration.key.gain, gain)
                      and (scale is None or c.calibration.key.scale is None
                           or not scale_findings(c.calibration.key.scale, scale))]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c.calibration.qc.status != "pass", -c.id))

    def on_day(self, instrument: str, serial: str, channel: str, day: date) -> list[StoredCalibration]:
        """All calibrations of one detector on one day (e.g. to name the voltages that exist)."""
        with self.store.read() as s:
            rows = s.scalars(select(m.Calibration).where(
                m.Calibration.instrument == instrument, m.Calibration.serial == serial,
                m.Calibration.channel == channel, m.Calibration.acquisition_date == day,
            ).order_by(m.Calibration.id))
            return [stored(r) for r in rows]

    def of_file(self, sha256: str) -> list[StoredCalibration]:
        """The calibrations fitted from one bead file (one per channel)."""
        with self.store.read() as s:
            rows = s.scalars(select(m.Calibration).where(m.Calibration.file_sha256 == sha256)
                             .order_by(m.Calibration.id))
            return [stored(r) for r in rows]

    def list(self) -> list[StoredCalibration]:
        """Every stored calibration, by id."""
        with self.store.read() as s:
            return [stored(r) for r in s.scalars(select(m.Calibration).order_by(m.Calibration.id))]

    def get(self, calibration_id: int) -> StoredCalibration | None:
        with self.store.read() as s:
            row = s.get(m.Calibration, calibration_id)
            return stored(row) if row is not None else None
