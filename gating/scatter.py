"""Scatter gates: debris (low FSC) and doublets (FSC-A vs FSC-H).

Debris: the density minimum of log10(FSC) between 1 and 0.25 decades below the main
leukocyte peak (a 'mindensity' gate as in openCyto; Finak et al. 2014, PLoS Comput Biol
10:e1003806). Doublets: two cells passing together double the pulse area but not its height,
so singlets sit on a line area/height = constant; events whose log10(area/height) leaves the
median +/- k robust SDs (1.4826 * MAD) are removed.
"""

from __future__ import annotations

import numpy as np

from science.qc import QC
from science.sampling import subsample_index
from science.statistics import mad_sd
from gating.result import DebrisGeometry, DoubletGeometry, GateStep, GatingQCConfig

_WINDOW_DECADES = (1.0, 0.25)   # search the valley this far below the main FSC peak
_BIN_DECADES = 0.01
_SMOOTH_DECADES = 0.04


def _smoothed_density(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.percentile(x, [0.1, 99.9])
    edges = np.arange(lo, hi + _BIN_DECADES, _BIN_DECADES)
    if edges.size < 3:
        edges = np.array([lo - _BIN_DECADES, lo, lo + _BIN_DECADES])
    counts, edges = np.histogram(x, bins=edges)
    half = int(np.ceil(3 * _SMOOTH_DECADES / _BIN_DECADES))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * _BIN_DECADES / _SMOOTH_DECADES) ** 2)
    density = np.convolve(counts, kernel / kernel.sum(), mode="same")
    return 0.5 * (edges[:-1] + edges[1:]), density


def debris_gate(fsc: np.ndarray, channel: str, config: GatingQCConfig = GatingQCConfig(),
                seed: int = 0) -> GateStep:
    """Cells = FSC above the debris valley; events with FSC <= 0 are debris."""
    sub = fsc[subsample_index(fsc.size, config.subsample, seed)]
    positive = sub[(sub > 0) & np.isfinite(sub)]
    if positive.size < 10:
        return GateStep(mask=np.zeros(fsc.shape[0], dtype=bool), geometry=None, qc=QC("fail", (
            f"{channel}: too few events with a positive, finite forward scatter to find the cells",)))
    centres, density = _smoothed_density(np.log10(positive))
    peak = int(np.argmax(density))
    window = np.flatnonzero((centres >= centres[peak] - _WINDOW_DECADES[0])
                            & (centres <= centres[peak] - _WINDOW_DECADES[1]))
    if window.size:
        valley = int(window[np.argmin(density[window])])
        # a true valley has more density somewhere to its left than at its own position
        valley_found = bool(valley > 0 and density[:valley].max() > density[valley])
        threshold = float(10 ** centres[valley]) if valley_found else 0.0
        depth = float(density[valley] / density[peak])
    else:
        valley_found, threshold, depth = False, 0.0, 0.0
    mask = fsc > threshold
    geometry = DebrisGeometry(channel=channel, threshold=threshold, valley_found=valley_found,
                              valley_depth=depth)
    debris_fraction = 1.0 - mask.mean() if mask.size else 0.0
    findings = []
    if debris_fraction > config.debris_review_above:
        findings.append(("review", f"debris is {debris_fraction:.0%} of events "
                                   f"(above {config.debris_review_above:.0%})"))
    notes = () if valley_found else (f"no debris valley on {channel}: only FSC <= 0 removed",)
    return GateStep(mask=mask, geometry=geometry, qc=QC.from_findings(findings), notes=notes)


def doublet_gate(area: np.ndarray, height: np.ndarray, parent: np.ndarray, area_channel: str,
                 height_channel: str, config: GatingQCConfig = GatingQCConfig(),
                 seed: int = 0) -> GateStep:
    """Singlets among ``parent``: log10(area/height) within median +/- k robust SDs."""
    index = np.flatnonzero(parent)
    index = index[subsample_index(index.size, config.subsample, seed)]
    a, h = area[index], height[index]
    ok = (a > 0) & (h > 0) & np.isfinite(a) & np.isfinite(h)
    if ok.sum() < 10:
        return GateStep(mask=np.zeros(parent.shape[0], dtype=bool), geometry=None, qc=QC("fail", (
            f"{area_channel}/{height_channel}: too few events with a positive, finite scatter to "
            "find the singlets",)))
    ratio = np.log10(a[ok] / h[ok])
    median = float(np.median(ratio))
    sd = mad_sd(ratio, median)
    low, high = 10 ** (median - config.doublet_mads * sd), 10 ** (median + config.doublet_mads * sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = area / height
    mask = parent & (height > 0) & (r >= low) & (r <= high)
    geometry = DoubletGeometry(area_channel=area_channel, height_channel=height_channel,
                               ratio_median=float(10 ** median), ratio_low=float(low),
                               ratio_high=float(high))
    n_parent = int(parent.sum())
    doublet_fraction = 1.0 - mask.sum() / n_parent if n_parent else 0.0
    findings = []
    if doublet_fraction > config.doublets_review_above:
        findings.append(("review", f"doublets are {doublet_fraction:.0%} of cells "
                                   f"(above {config.doublets_review_above:.0%})"))
    return GateStep(mask=mask, geometry=geometry, qc=QC.from_findings(findings))
