"""Which fluorescence channels carry the bead signal: the clustering channels of a bead tube.

Multi-dye beads (rainbow kits) line their levels up in every channel their dyes reach, and
levels that overlap in one channel are apart in another (FlowCal clusters Spherotech rainbow
beads on FL1 and FL3 for this reason; Castillo-Hair et al. 2016, ACS Synth. Biol. 5:774).
Single-dye beads (QuantiBRITE PE) light one channel; the others hold only noise or, on an
uncompensated instrument, the same levels through spillover, which does no harm. A channel
is chosen when its bead events span at least ``min_span`` decades (5th to 95th percentile,
in the calibration's log transform) and rank in the same order as the measured channel
(Spearman's rho >= ``min_rank_correlation``), i.e. when it carries the same levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from science.transform import log_transform

MIN_SPAN_DECADES = 1.0
MIN_RANK_CORRELATION = 0.8


def _ranks(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.size)
    out[np.argsort(values, kind="stable")] = np.arange(values.size)
    return out


def bead_signal_channels(measured: np.ndarray, measured_width: float, candidates: np.ndarray,
                         widths: Sequence[float], names: Sequence[str], *,
                         min_span: float = MIN_SPAN_DECADES,
                         min_rank_correlation: float = MIN_RANK_CORRELATION) -> tuple[str, ...]:
    """The ``names`` of the ``candidates`` columns (linear values, rows aligned with the
    ``measured`` channel; a seeded subsample of the tube is enough) that carry the bead levels;
    ``widths``: each channel's log-transform width (:func:`science.transform.transform_width`)."""
    finite = np.isfinite(measured)
    if not (measured_width > 0 and finite.sum() > 1):
        return ()
    reference = _ranks(log_transform(measured[finite], measured_width))
    chosen = []
    for j, name in enumerate(names):
        values = candidates[finite, j]
        if not (widths[j] > 0 and values.size and np.all(np.isfinite(values))):
            continue
        t = log_transform(values, widths[j])
        low, high = np.percentile(t, [5.0, 95.0])
        rho = float(np.corrcoef(_ranks(t), reference)[0, 1]) if high > low else 0.0
        if high - low >= min_span and rho >= min_rank_correlation:
            chosen.append(name)
    return tuple(chosen)
