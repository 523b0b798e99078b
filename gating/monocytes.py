"""Automatic monocyte gate: the CD14-bright population at its own scatter, on a density plot.

Monocytes are what defines them on the classic SSC vs CD14 plot (DESIGN.md, Gating): CD14
bright, at intermediate SSC; granulocytes are CD14 dim at high SSC, lymphocytes CD14 negative
at low SSC. The populations of the plot are the basins of its smoothed density
(:mod:`gating.density`, on asinh(CD14) and asinh(SSC)) and the rules read them as a person
would:

- granulocytes = the largest population in the upper half of the SSC span of the large ones;
- monocytes = the CD14-brightest population with SSC below the granulocytes' and CD14 at
  least ``cd14_bright_min_decades`` above theirs. A denser, dimmer cluster (immature
  granulocytes of a left shift, eosinophils) is never a candidate, however large;
- the gate is the part of the monocytes' basin above ``contour_fraction`` of their peak,
  drawn as a polygon (:mod:`gating.polygon`), so FlowKit or FlowJo can apply it as it is;
- separation = the density at the pass to each neighbouring population, as a share of the
  lower of the two peaks: the valley a person sees between two clusters;
- CD14-dim events at the monocytes' scatter (SSC within their median +/- ``dim_ssc_sds``
  robust SDs) are monocytes that shed CD14 when they form a population of their own there,
  and are then gated too; otherwise they are left out, with a note. Either way the monocytes
  are gated the other way as well, and QC asks for a review only when the PE median moves
  between the two;
- a population merged with the monocytes without any valley (cells of another HLA-DR at the
  monocytes' scatter) shows as a PE median that depends on the CD14 cut: review, or fail.

HLA-DR (PE) never moves the gate: :func:`monocyte_gate` draws it from CD14 and SSC alone;
:func:`settle` then reads PE on the stable events (after :mod:`gating.stability`) to say how
much the CD14-dim choice and the CD14 cut move the monocytes' PE median.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from science.qc import QC
from science.sampling import subsample_index
from science.statistics import mad_sd
from science.transform import LN10, asinh, asinh_cofactor
from gating.density import Grid, Landscape, landscape
from gating.polygon import inside, star_polygon
from gating.result import (CD14DimCheck, GatePolygon, GateStep, GatingQCConfig, MonocyteGeometry,
                           Population)

_MAJOR_SHARE = 0.05      # populations this large anchor the SSC span (granulocytes, lymphocytes)
_MIN_SPREAD = 0.03       # robust SD (asinh units, ~3 % CV) below which a "population" is one value
_RANGE_PERCENTILES = (0.1, 99.9)
_PAD = 0.5               # asinh units added to the grid beyond the robust range


def _grid(x: np.ndarray, y: np.ndarray, bins: int) -> Grid:
    """A square grid over the robust range of (x, y) (a seeded subsample is enough)."""
    (x_lo, x_hi), (y_lo, y_hi) = np.percentile(x, _RANGE_PERCENTILES), np.percentile(y, _RANGE_PERCENTILES)
    x_lo, x_hi, y_lo, y_hi = x_lo - _PAD, x_hi + _PAD, y_lo - _PAD, y_hi + _PAD
    return Grid(x0=float(x_lo), dx=float(x_hi - x_lo) / bins, nx=bins,
                y0=float(y_lo), dy=float(y_hi - y_lo) / bins, ny=bins)


def _roles(land: Landscape, config: GatingQCConfig) -> tuple[int, int, int] | None:
    """(monocytes, granulocytes, lymphocytes) basin indices; None when no population is
    CD14-bright at intermediate SSC."""
    peaks = np.array([land.peak_xy(k) for k in range(land.mass.size)])
    share = land.mass / land.mass.sum()
    major = np.flatnonzero(share >= _MAJOR_SHARE)
    if major.size == 0:
        return None
    y_low, y_high = peaks[major, 1].min(), peaks[major, 1].max()
    upper = major[peaks[major, 1] >= 0.5 * (y_low + y_high)]
    granulocytes = int(upper[np.argmax(share[upper])])
    lymphocytes = int(major[np.argmin(peaks[major, 1])])
    bright = peaks[granulocytes, 0] + config.cd14_bright_min_decades * LN10
    candidates = np.flatnonzero((peaks[:, 0] >= bright) & (peaks[:, 1] < peaks[granulocytes, 1])
                                & (land.mass >= config.population_min_events))
    if candidates.size == 0:
        return None
    return int(candidates[np.argmax(peaks[candidates, 0])]), granulocytes, lymphocytes


def _region(land: Landscape, basin: int, fraction: float) -> np.ndarray:
    return (land.labels == basin) & (land.density >= fraction * land.peak_density[basin])


def _polygon(land: Landscape, basin: int, config: GatingQCConfig, name: str) -> GatePolygon:
    vertices = star_polygon(_region(land, basin, config.contour_fraction), land.grid,
                            (int(land.peaks[basin, 0]), int(land.peaks[basin, 1])))
    return GatePolygon(name=name, vertices=tuple((float(a), float(b)) for a, b in vertices))


def _median_shift(pe: np.ndarray, without: np.ndarray, with_: np.ndarray) -> float | None:
    """PE median of the monocytes with the CD14-dim events / without them - 1."""
    if not without.any() or not with_.any() or np.array_equal(without, with_):
        return None
    base = float(np.median(pe[without]))
    return float(np.median(pe[with_]) / base - 1.0) if base > 0 else None


def _core_shift(cd14: np.ndarray, pe: np.ndarray, z: float) -> float | None:
    """PE median of the CD14-brighter half of the gated monocytes / that of all of them - 1,
    when it differs by more than ``z`` standard errors (else 0.0; None when not measurable).

    A gate that mixes the monocytes with CD14-dimmer cells of another HLA-DR (immature
    granulocytes at the monocytes' scatter, with no density valley between them) gives a
    value that depends on how bright a cut is; pure monocytes do not. Nested halves: the SE
    of the difference of the log medians is about 1.2533 sigma / sqrt(n) (asymptotic median
    variance pi sigma^2 / 2n, halved sample minus full sample).
    """
    if cd14.size < 50:
        return None
    full = float(np.median(pe))
    core = float(np.median(pe[cd14 >= np.median(cd14)]))
    if full <= 0 or core <= 0:
        return None
    logs = np.log10(np.clip(pe, full * 1e-3, None))
    se = 1.2533 * mad_sd(logs) / np.sqrt(cd14.size)
    delta = np.log10(core / full)
    return float(10.0 ** delta - 1.0) if abs(delta) > z * se else 0.0


@dataclass(frozen=True, eq=False)
class Candidates:
    """The monocyte gate before HLA-DR is read: the CD14-bright monocytes, the CD14-dim events
    at their scatter (a population of their own when ``dim_polygon`` is set, else the band
    ``zone``), the plot's populations and how well the monocytes stand apart from them.
    ``geometry`` is None (and the masks empty) when no monocytes were found."""

    bright: np.ndarray
    dim: np.ndarray
    bright_polygon: GatePolygon | None
    dim_polygon: GatePolygon | None
    zone: GatePolygon | None
    geometry: MonocyteGeometry | None
    separation: float | None
    qc: QC


def _not_found(n: int, reason: str) -> Candidates:
    empty = np.zeros(n, dtype=bool)
    return Candidates(empty, empty, None, None, None, None, None, QC("fail", (reason,)))


def monocyte_gate(cd14: np.ndarray, ssc: np.ndarray, parent: np.ndarray, cd14_channel: str,
                  ssc_channel: str, config: GatingQCConfig = GatingQCConfig(),
                  seed: int = 0) -> Candidates:
    """Monocytes among ``parent`` (singlet leukocytes) from CD14 and SSC (linear values):
    where the gate is drawn, from these two channels only."""
    index = np.flatnonzero(parent & np.isfinite(cd14) & np.isfinite(ssc))
    if index.size < 10 * config.population_min_events:
        return _not_found(cd14.shape[0], f"only {index.size} singlet leukocytes: too few to find monocytes")
    sample = subsample_index(index.size, config.subsample, seed)     # scales and grid range only
    c14, css = asinh_cofactor(cd14[index[sample]]), asinh_cofactor(ssc[index[sample]])
    x, y = asinh(cd14[index], c14), asinh(ssc[index], css)
    land = landscape(x, y, _grid(x[sample], y[sample], config.grid_bins), config.bandwidth,
                     config.population_min_events, config.merge_depth)
    roles = _roles(land, config)
    if roles is None:
        return _not_found(cd14.shape[0], "no CD14-bright population at intermediate SSC: monocytes not found")
    mono, gran, lymph = roles
    bright_polygon = _polygon(land, mono, config, "monocytes_cd14_bright")
    bright = inside(x, y, bright_polygon.as_array())
    ssc_median = float(np.median(y[bright]))
    ssc_sd = mad_sd(y[bright], ssc_median)
    cd14_sd = mad_sd(x[bright])
    if min(ssc_sd, cd14_sd) < _MIN_SPREAD:
        return _not_found(cd14.shape[0], f"the CD14-bright events have one {'CD14' if cd14_sd < _MIN_SPREAD else 'SSC'} "
                                         "value (no spread): the channel saturates or does not decode, "
                                         "monocytes not found")
    band = (ssc_median - config.dim_ssc_sds * ssc_sd, ssc_median + config.dim_ssc_sds * ssc_sd)
    mono_x = land.peak_xy(mono)[0]
    dim_basins = [k for k in range(land.mass.size) if k != mono
                  and band[0] <= land.peak_xy(k)[1] <= band[1] and land.peak_xy(k)[0] < mono_x
                  and land.mass[k] >= config.population_min_events and land.saddle[mono, k] > 0]
    if dim_basins:
        dim = max(dim_basins, key=lambda k: land.mass[k])
        dim_polygon, zone = _polygon(land, dim, config, "monocytes_cd14_dim"), None
        dim_mask = inside(x, y, dim_polygon.as_array()) & ~bright
    else:
        # no population of their own: the band below the monocytes' SSC median (the side away
        # from the granulocytes) between the lymphocytes' and the monocytes' CD14
        dim, dim_polygon = None, None
        x_low = 0.5 * (land.peak_xy(lymph)[0] + land.peak_xy(gran)[0])
        zone = GatePolygon(name="cd14_dim_zone", vertices=(
            (x_low, band[0]), (mono_x, band[0]), (mono_x, ssc_median), (x_low, ssc_median)))
        dim_mask = inside(x, y, zone.as_array()) & ~bright
    monocyte_basins = {mono} if dim is None else {mono, dim}
    total = land.mass.sum()
    populations, valleys = [], []
    for k in np.argsort([land.peak_xy(k)[1] for k in range(land.mass.size)]):
        k = int(k)
        role = ("monocytes" if k == mono else "monocytes_cd14_dim" if k == dim
                else "granulocytes" if k == gran else "lymphocytes" if k == lymph else "other")
        touching = k not in monocyte_basins and land.saddle[mono, k] > 0
        valley = land.valley(mono, k) if touching else None
        if valley is not None and land.mass[k] >= config.neighbour_min_share * total:
            valleys.append((valley, role, land.peak_xy(k)))
        populations.append(Population(role=role, share=float(land.mass[k] / total),
                                      peak=tuple(round(v, 4) for v in land.peak_xy(k)),
                                      valley=None if valley is None else round(valley, 4)))
    worst = max(valleys, default=None)
    findings: list[tuple[str, str]] = []
    if worst is not None and worst[0] > config.valley_review_above:
        valley, role, (px, py) = worst
        findings.append(("review", f"monocytes poorly separated from the {role} population at "
                                   f"CD14 {np.sinh(px) * c14:,.0f}, SSC {np.sinh(py) * css:,.0f}: "
                                   f"the density between them falls only to {valley:.0%} of the "
                                   f"lower peak (review above {config.valley_review_above:.0%})"))
    masks = []
    for local in (bright, dim_mask):
        full = np.zeros(cd14.shape[0], dtype=bool)
        full[index[local]] = True
        masks.append(full)
    geometry = MonocyteGeometry(cd14_channel=cd14_channel, ssc_channel=ssc_channel, cd14_cofactor=c14,
                                ssc_cofactor=css, polygons=(bright_polygon,),
                                populations=tuple(populations), dim_zone=zone or dim_polygon)
    return Candidates(bright=masks[0], dim=masks[1], bright_polygon=bright_polygon, dim_polygon=dim_polygon,
                      zone=zone, geometry=geometry, separation=1.0 - worst[0] if worst is not None else 1.0,
                      qc=QC.from_findings(findings))


def settle(found: Candidates, cd14: np.ndarray, pe: np.ndarray | None, stable: np.ndarray,
           config: GatingQCConfig = GatingQCConfig()) -> GateStep:
    """The final monocytes among the ``stable`` events, once HLA-DR (``pe``) is read.

    PE never moves a polygon: a CD14-dim population of its own at the monocytes' scatter is
    kept (the gate is then the OR of both polygons), other CD14-dim events there are left out,
    and PE says how far the other choice would move the median (review above
    ``dim_shift_review_above``) and whether the CD14-brighter core agrees with the whole gate.
    """
    if found.geometry is None:
        return GateStep(mask=found.bright, geometry=None, qc=found.qc)
    bright, dim = found.bright & stable, found.dim & stable
    with_dim = bright | dim
    shift = _median_shift(pe, bright, with_dim) if pe is not None else None
    kept = found.dim_polygon is not None                    # scatter says monocyte: keep them
    n_dim, n_bright = int(dim.sum()), int(bright.sum())
    check = CD14DimCheck(kept=kept, events=n_dim, share=n_dim / max(n_bright, 1), pe_median_shift=shift)
    findings: list[tuple[str, str]] = []
    notes: list[str] = []
    what = (f"{n_dim} CD14-dim events at the monocytes' scatter ("
            + ("a population of their own, kept" if kept else "not a population of their own, left out")
            + f"; {check.share:.0%} of the CD14-bright monocytes)")
    if shift is not None and abs(shift) > config.dim_shift_review_above:
        other = 1.0 / (1.0 + shift) - 1.0 if kept else shift
        findings.append(("review", f"{what}: {'without' if kept else 'with'} them the PE median, and the "
                                   f"AB/C, would be {other:+.1%} off (review above "
                                   f"{config.dim_shift_review_above:.0%}): check the gate"))
    elif check.share >= 0.01:
        notes.append(what + (f"; the PE median moves {shift:+.1%} with them" if shift is not None else ""))
    core = _core_shift(cd14[bright], pe[bright], config.core_shift_z) if pe is not None else None
    if core is not None and abs(core) > config.core_shift_review_above:
        status = "fail" if abs(core) > config.core_shift_fail_above else "review"
        findings.append((status, f"the monocytes are not resolved from CD14-dimmer cells of "
                                 f"another HLA-DR: the CD14-brighter half of the gate has a PE "
                                 f"median {core:+.0%} off that of the whole gate (review above "
                                 f"{config.core_shift_review_above:.0%}, fail above "
                                 f"{config.core_shift_fail_above:.0%})"))
    polygons = (found.bright_polygon, found.dim_polygon) if kept else (found.bright_polygon,)
    geometry = replace(found.geometry, polygons=polygons, dim_zone=None if kept else found.geometry.dim_zone)
    return GateStep(mask=with_dim if kept else bright, geometry=geometry,
                    qc=found.qc.merged(QC.from_findings(findings)), separation=found.separation,
                    notes=tuple(notes), alternatives={"cd14_bright": bright, "with_cd14_dim": with_dim},
                    cd14_dim=check, core_shift=core)
