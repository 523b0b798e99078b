"""Spillover compensation of uncompensated event data (checked against FlowKit's own).

Compensated = observed @ inverse(S), with S the spillover matrix whose rows are the emitting
fluorochromes and columns the detectors (FCS 3.1 standard, $SPILLOVER keyword; Roederer 2001,
Cytometry 45:194). The matrix's own channel order is honoured: it may differ from the data's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def compensate(events: np.ndarray, channel_names: Sequence[str],
               spillover_channels: Sequence[str], spillover_matrix: np.ndarray, *,
               in_place: bool = False) -> np.ndarray:
    """Compensated ``events`` (rows = events, columns in ``channel_names`` order).

    Only call this on uncompensated data: hardware-compensated files (FCS 2.0 analog instruments)
    carry no matrix and must be used as they are. Columns not in the matrix are left unchanged.
    Done on the matrix's columns only, so ``in_place=True`` needs no copy of the whole event
    matrix, with the 2-D inverse applied as one product (a solve with a million right-hand sides
    is several times slower); importing flowkit itself would cost ~40 MB per process for no extra
    arithmetic. The tests check the result against FlowKit's own ``Sample.apply_compensation``.
    """
    names = list(channel_names)
    detectors = list(spillover_channels)
    spill = np.asarray(spillover_matrix, dtype=float)
    if spill.shape != (len(detectors), len(detectors)):
        raise ValueError(f"spillover matrix of shape {spill.shape} does not match "
                         f"{len(detectors)} channels")
    missing = [d for d in detectors if d not in names]
    if missing:
        raise ValueError(f"spillover channels absent from the data: {', '.join(missing)}")
    if len(set(detectors)) != len(detectors):
        raise ValueError("spillover channels are not unique")
    indices = [names.index(d) for d in detectors]
    out = events if in_place else events.copy()
    out[:, indices] = out[:, indices] @ np.linalg.inv(spill).astype(out.dtype)
    return out
