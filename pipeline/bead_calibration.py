"""Calibrate a bead acquisition: the one path the CLI, ``analyze`` and the flows share.

Turns an :class:`~pipeline.acquisition.Acquisition` into the plain arrays and ranges the
pure ``calibration`` package needs, and a :class:`~calibration.Calibration` into the
contract's JSON document (DESIGN.md, Interfaces: ``mhladr calibrate``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from calibration.bead_gate import Scatter
from calibration.channel_choice import bead_signal_channels
from calibration.key import CalibrationKey
from calibration.result import Calibration
from science.sampling import subsample_index
from science.transform import transform_width
from pipeline.acquisition import Acquisition, Channel
from pipeline.config import Settings
from pipeline.errors import BAD_INPUT, BAD_LOT, NO_BEADS, WRONG_PANEL, InputError
from pipeline.channel_scale import channel_scale
from pipeline.compensation_state import compensation_state
from pipeline.lots import Lot

if TYPE_CHECKING:
    from calibration.joint_peaks import ClusteringChannels


def _scatter(acq: Acquisition) -> Scatter | None:
    """Area scatter channels (height when there is no area), with the heights beside them so
    the bead gate can fall back to height where an area channel is clipped."""
    roles = acq.roles
    fsc_name, ssc_name = roles.fsc_a or roles.fsc_h, roles.ssc_a or roles.ssc_h
    if fsc_name is None or ssc_name is None:
        return None
    fsc, ssc = acq.channel(fsc_name), acq.channel(ssc_name)
    fsc_h = acq.channel(roles.fsc_h) if roles.fsc_a and roles.fsc_h else None
    ssc_h = acq.channel(roles.ssc_h) if roles.ssc_a and roles.ssc_h else None
    return Scatter(fsc=acq.column(fsc.name), ssc=acq.column(ssc.name),
                   fsc_range=fsc.linear_range, ssc_range=ssc.linear_range,
                   fsc_h=acq.column(fsc_h.name) if fsc_h else None,
                   fsc_h_range=fsc_h.linear_range if fsc_h else None,
                   ssc_h=acq.column(ssc_h.name) if ssc_h else None,
                   ssc_h_range=ssc_h.linear_range if ssc_h else None)


def _channel(acq: Acquisition, name: str) -> Channel:
    try:
        return acq.channel(name)
    except KeyError:
        known = ", ".join(c.name for c in acq.channels)
        raise InputError(acq.path, BAD_INPUT, f"no channel {name!r} (channels: {known})") from None


_SCATTER_NAME = re.compile(r"^\s*(FSC|SSC|FS\b|SS\b)", re.IGNORECASE)
_CHOICE_SAMPLE = 20_000          # events the clustering-channel choice looks at (seeded subsample)


def _fluorescence_channels(acq: Acquisition, measured: str) -> list[Channel]:
    """Every channel but the measured one, scatter (by role or name) and Time."""
    scatter = {n for n in (acq.roles.fsc_a, acq.roles.fsc_h, acq.roles.ssc_a, acq.roles.ssc_h) if n}
    return [c for c in acq.channels if c.name != measured and not c.is_time and c.name not in scatter
            and not _SCATTER_NAME.match(c.name)]


def _clustering(acq: Acquisition, measured: str, names: Sequence[str] | None) -> "ClusteringChannels | None":
    """The channels other than ``measured`` among ``names`` (None when there are none); without
    ``names``, every fluorescence channel that carries the bead levels
    (:func:`calibration.channel_choice.bead_signal_channels`)."""
    from calibration.joint_peaks import ClusteringChannels

    if names is None:
        pool = _fluorescence_channels(acq, measured)
        rows = subsample_index(acq.n_events, _CHOICE_SAMPLE)
        chosen = set(bead_signal_channels(
            acq.column(measured)[rows], transform_width(acq.channel(measured).linear_range),
            acq.events[np.ix_(rows, [c.index for c in pool])], [transform_width(c.linear_range) for c in pool],
            [c.name for c in pool]))
        extra = [c for c in pool if c.name in chosen]
    else:
        extra = [c for c in (_channel(acq, n) for n in dict.fromkeys(names)) if c.name != measured]
    if not extra:
        return None
    return ClusteringChannels(values=np.column_stack([acq.column(c.name) for c in extra]),
                              ranges=tuple(c.linear_range for c in extra), names=tuple(c.name for c in extra))


def calibrate_file(acq: Acquisition, lot: Lot, settings: Settings, channel: str | None = None,
                   seed: int = 0, clustering_channels: Sequence[str] | None = None) -> Calibration:
    """Calibrate the bead tube ``acq`` with the bead values of ``lot`` in ``channel`` (default:
    its PE role channel), with the statistic and QC thresholds of ``settings``.

    ``clustering_channels``: channels to find the bead populations in jointly (multi-dye beads
    such as rainbow beads); the measured channel is always one of them (naming only it clusters
    on it alone). None: every fluorescence channel that carries the same bead levels.
    Raises :class:`InputError` when a channel is absent, the values are unusable or no bead
    event is left; QC problems are in the returned calibration's ``qc``.
    """
    from calibration.calibrate import BadBeadValuesError, NoBeadsError, calibrate_beads  # the fitting numerics

    name = channel or acq.roles.pe
    if name is None:
        raise InputError(acq.path, WRONG_PANEL, "no PE channel found in this bead file: name one with --channel")
    ch = _channel(acq, name)
    clustering = _clustering(acq, ch.name, clustering_channels)
    key = CalibrationKey(instrument=acq.instrument, serial=acq.serial, channel=ch.name, voltage=ch.voltage,
                         gain=ch.gain, acquired=acq.acquired, lot=lot.name or acq.bead_lot, sha256=acq.sha256,
                         scale=channel_scale(acq, ch.name), compensation=compensation_state(acq))
    try:
        return calibrate_beads(acq.column(ch.name), lot.values, channel_range=ch.linear_range,
                               scatter=_scatter(acq), clustering=clustering,
                               statistic=settings.statistic,  # type: ignore[arg-type]
                               key=key, qc_config=settings.calibration_qc(), seed=seed)
    except BadBeadValuesError as exc:
        raise InputError(acq.path, BAD_LOT, str(exc)) from None
    except NoBeadsError as exc:
        raise InputError(acq.path, NO_BEADS, str(exc)) from None


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), 6)


def calibration_document(cal: Calibration, file: str | None) -> dict[str, Any]:
    """The contract's ``calibrate`` JSON document (plus the full record)."""
    key = cal.key
    curve = cal.curve
    fitted_or_found = [p for p in cal.populations if p.fluorescence is not None]
    return {
        "file": file,
        "sha256": key.sha256,
        "instrument": key.instrument,
        "serial": key.serial,
        "channel": key.channel,
        "voltage": key.voltage,
        "gain": key.gain,
        "scale": key.scale.as_dict() if key.scale else None,
        "acquired": key.acquired.isoformat() if key.acquired else None,
        "lot": key.lot,
        "bead_values": list(cal.bead_values),
        "statistic": cal.statistic,
        "clustering_channels": [key.channel, *cal.clustering_channels],
        "peaks": [{"bead_value": p.bead_value, "fluorescence": _num(p.fluorescence), "events": p.events,
                   "cv": _num(p.cv), "status": p.status, "residual": _num(p.residual)}
                  for p in fitted_or_found],
        "slope": _num(curve.slope) if curve else None,
        "intercept": _num(curve.intercept) if curve else None,
        "r2": _num(curve.r2) if curve else None,
        "covariance": curve.as_dict()["covariance"] if curve else None,
        "bead_range": [curve.f_min, curve.f_max] if curve else None,
        "missing_levels": list(cal.missing_levels),
        "excluded_levels": [{"bead_value": p.bead_value, "status": p.status, "reason": p.reason}
                            for p in cal.populations if p.status in ("saturated", "below_range", "blank")],
        "extra_populations": [{"fluorescence": _num(p.fluorescence), "events": p.events}
                              for p in cal.extra_populations],
        "gate": cal.gate.as_dict() if cal.gate else None,
        "qc": cal.qc.as_dict(),
    }
