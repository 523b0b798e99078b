"""Singlet bead gate on forward/side scatter.

Beads of one kit share one size, so singlets form one tight FSC/SSC cluster. The gate drops
events piled at the edges of the scatter channels' ranges, doublets (FSC-A/FSC-H ratio far
from the beads' own, when both exist) and everything outside a robust ellipse around the
densest FSC/SSC cluster (debris, doublets, aggregates). Some analog instruments clip the
area signal: when more than a quarter of the events sit at the top of an area channel's range
and its height channel is given, the gate uses the height (for FSC that also skips the
singlet gate) and says so in the notes. The ellipse's centre and covariance
come from concentration steps as in the minimum covariance determinant estimator
(Rousseeuw & Van Driessen, Technometrics 1999), started at the 2-D histogram mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from science.statistics import mad_sd

Range = tuple[float, float]
CLIPPED_SHARE = 0.25   # share of events at the top of an area channel that marks it clipped


@dataclass(frozen=True, eq=False)
class Scatter:
    """Scatter signals (linear) with their channel ranges (linear (low, high))."""

    fsc: np.ndarray
    ssc: np.ndarray
    fsc_range: Range
    ssc_range: Range
    fsc_h: np.ndarray | None = None      # FSC height when ``fsc`` is the area
    fsc_h_range: Range | None = None
    ssc_h: np.ndarray | None = None      # SSC height when ``ssc`` is the area
    ssc_h_range: Range | None = None


@dataclass(frozen=True)
class GateCounts:
    """How many events each step of the bead gate removed (the calibration's record of it)."""

    total: int
    at_range_edge: int
    doublets: int
    outside_cluster: int
    kept: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "at_range_edge": self.at_range_edge, "doublets": self.doublets,
                "outside_cluster": self.outside_cluster, "kept": self.kept, "notes": list(self.notes)}


@dataclass(frozen=True, eq=False)
class BeadGate:
    """Which events are singlet beads (``mask``), with the counts of each exclusion step."""

    mask: np.ndarray
    counts: GateCounts

    @property
    def kept(self) -> int:
        return self.counts.kept


def _at_edge(x: np.ndarray, rng: Range, top_fraction: float) -> np.ndarray:
    low, high = rng
    return ~np.isfinite(x) | (x <= max(low, 0.0)) | (x >= top_fraction * high)


def _unclipped(name: str, area: np.ndarray, area_range: Range, height: np.ndarray | None,
               height_range: Range | None, top_fraction: float, notes: list[str],
               consequence: str = "") -> tuple[np.ndarray, Range, bool]:
    """(signal, its range, whether height replaced area): the area channel unless more than
    ``CLIPPED_SHARE`` of its events sit at ``top_fraction`` of its range and a height is given."""
    if height is None or height_range is None:
        return area, area_range, False
    share = float(np.mean(area >= top_fraction * area_range[1]))
    if share <= CLIPPED_SHARE:
        return area, area_range, False
    notes.append(f"{name} area at the top of its range for {share:.0%} of events: height used{consequence}")
    return np.asarray(height, dtype=float), height_range, True


def _mode_2d(a: np.ndarray, b: np.ndarray, bins: int = 64) -> np.ndarray:
    lo_a, hi_a = np.percentile(a, [0.5, 99.5])
    lo_b, hi_b = np.percentile(b, [0.5, 99.5])
    hist, ea, eb = np.histogram2d(a, b, bins=bins, range=[[lo_a, hi_a + 1e-9], [lo_b, hi_b + 1e-9]])
    kernel = np.array([1.0, 2.0, 1.0])
    smooth = np.apply_along_axis(np.convolve, 0, hist, kernel, "same")
    smooth = np.apply_along_axis(np.convolve, 1, smooth, kernel, "same")
    i, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return np.array([(ea[i] + ea[i + 1]) / 2.0, (eb[j] + eb[j + 1]) / 2.0])


def _consistency_2d(alpha: float) -> float:
    """E[d^2 | d^2 <= q_alpha] / 2 for a bivariate normal: rescales a trimmed covariance."""
    return (1.0 - (1.0 - alpha) * (1.0 - np.log(1.0 - alpha))) / alpha


def gate_beads(
    scatter: Scatter,
    *,
    support_fraction: float = 0.5,
    ellipse_quantile: float = 0.99,
    doublet_mads: float = 4.0,
    top_fraction: float = 0.98,
    c_steps: int = 5,
) -> BeadGate:
    """Singlet beads: inside the scatter ranges, singlet by FSC-A/FSC-H, inside the robust ellipse."""
    n = np.asarray(scatter.fsc).size
    notes: list[str] = []
    ssc, ssc_range, _ = _unclipped("SSC", np.asarray(scatter.ssc, dtype=float), scatter.ssc_range,
                                   scatter.ssc_h, scatter.ssc_h_range, top_fraction, notes)
    fsc, fsc_range, fsc_swapped = _unclipped("FSC", np.asarray(scatter.fsc, dtype=float), scatter.fsc_range,
                                             scatter.fsc_h, scatter.fsc_h_range, top_fraction, notes,
                                             "; singlet gate skipped")   # clipped area cannot show doublets
    edge = _at_edge(fsc, fsc_range, top_fraction) | _at_edge(ssc, ssc_range, top_fraction)
    doublet = np.zeros(n, dtype=bool)
    if not fsc_swapped and scatter.fsc_h is not None and scatter.fsc_h_range is not None:
        fsc_h = np.asarray(scatter.fsc_h, dtype=float)
        edge |= _at_edge(fsc_h, scatter.fsc_h_range, top_fraction)
        ok = ~edge
        ratio = np.full(n, np.nan)
        ratio[ok] = np.log10(fsc[ok] / fsc_h[ok])
        med = np.median(ratio[ok])
        mad = max(mad_sd(ratio[ok], med), 0.005)
        doublet = ok & (np.abs(ratio - med) > doublet_mads * mad)
    keep = ~edge & ~doublet
    if keep.sum() < 10:
        return BeadGate(keep, GateCounts(total=n, at_range_edge=int(edge.sum()), doublets=int(doublet.sum()),
                                         outside_cluster=0, kept=int(keep.sum()),
                                         notes=tuple(notes + ["too few events to gate on scatter"])))
    idx = np.flatnonzero(keep)
    pts = np.column_stack([np.log10(fsc[idx]), np.log10(ssc[idx])])
    centre = _mode_2d(pts[:, 0], pts[:, 1])
    spread = np.maximum([mad_sd(pts[:, j], centre[j]) for j in range(2)], 1e-3)
    d2 = (((pts - centre) / spread) ** 2).sum(axis=1)
    h = max(int(support_fraction * pts.shape[0]), 3)
    for _ in range(c_steps):
        subset = pts[np.argpartition(d2, h - 1)[:h]]
        centre = subset.mean(axis=0)
        cov = np.cov(subset.T) / _consistency_2d(support_fraction) + np.eye(2) * 1e-8
        diff = pts - centre
        d2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
    inside = d2 <= -2.0 * np.log(1.0 - ellipse_quantile)   # chi-square(2) quantile
    mask = np.zeros(n, dtype=bool)
    mask[idx[inside]] = True
    return BeadGate(mask, GateCounts(total=n, at_range_edge=int(edge.sum()), doublets=int(doublet.sum()),
                                     outside_cluster=int((~inside).sum()), kept=int(mask.sum()),
                                     notes=tuple(notes)))
