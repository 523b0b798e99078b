"""Spillover compensation of uncompensated event data (checked against FlowKit's own).

Compensated = observed @ inverse(S), with S the spillover matrix whose rows are the emitting
fluorochromes and columns the detectors (FCS 3.1 standard, $SPILLOVER keyword; Roederer 2001,
Cytometry 45:194). The matrix's own channel order is honoured: it may differ from the data's.

A matrix changes every fluorescence value, so it is checked before use
(:func:`spillover_problems`): finite, square over unique channels, a diagonal of 1 (each
fluorochrome's own detector is the reference of its spill, FCS 3.1), and invertible with a
condition number small enough that the inverse does not amplify noise and rounding into the
numbers (every matrix of the project's real-file corpus has a condition number below 10).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIAGONAL_TOLERANCE = 0.05      # |S_ii - 1| above this is not a spillover matrix (a percent scale, a typo)
MAX_CONDITION = 1e3            # 2-norm condition number of S
SINGULAR_CONDITION = 1e12      # beyond this the inverse is rounding noise: singular in practice


def spillover_problems(channels: Sequence[str], matrix: np.ndarray) -> list[str]:
    """What makes a spillover matrix unusable (empty when it is sound)."""
    spill = np.asarray(matrix, dtype=float)
    n = len(channels)
    if spill.shape != (n, n):
        return [f"matrix of shape {spill.shape} for {n} channels (must be square, {n} x {n})"]
    problems = []
    if len(set(channels)) != n:
        problems.append("channel names repeat")
    if not np.all(np.isfinite(spill)):
        problems.append(f"{int(np.sum(~np.isfinite(spill)))} coefficient(s) not finite")
        return problems
    off = np.flatnonzero(np.abs(np.diag(spill) - 1.0) > DIAGONAL_TOLERANCE)
    if off.size:
        problems.append("diagonal not 1 (" + ", ".join(f"{channels[i]} {spill[i, i]:g}" for i in off[:4]) + ")")
    condition = float(np.linalg.cond(spill))
    if not condition <= SINGULAR_CONDITION:
        problems.append("singular, not invertible in double precision"
                        + (f" (condition number {condition:.3g})" if np.isfinite(condition) else ""))
    elif condition > MAX_CONDITION:
        problems.append(f"ill-conditioned (condition number {condition:.3g} > {MAX_CONDITION:g})")
    return problems


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
    problems = spillover_problems(detectors, spill)
    if problems:
        raise ValueError("unusable spillover matrix: " + "; ".join(problems))
    missing = [d for d in detectors if d not in names]
    if missing:
        raise ValueError(f"spillover channels absent from the data: {', '.join(missing)}")
    indices = [names.index(d) for d in detectors]
    out = events if in_place else events.copy()
    out[:, indices] = out[:, indices] @ np.linalg.inv(spill).astype(out.dtype)
    return out
