"""Populations as a person sees them on a 2-D plot: smoothed density, its peaks, basins and passes.

The events are binned on a regular grid and smoothed with a Gaussian kernel (a binned kernel
density estimate; Wand & Jones 1995, Kernel Smoothing, ch. 4). Every bin climbs to its highest
neighbour until it reaches a peak (mean-shift-like hill climbing on the grid; Fukunaga &
Hostetler 1975), which splits the plot into basins, one per peak. Two basins meet at a pass:
the highest density on any path between their peaks is the density at the highest pair of
touching bins that belong to the two basins (the saddle). A peak whose basin holds too few
events, or that rises too little above its pass to a higher peak, is merged into that peak's
basin (persistence-based merging as in ToMATo; Chazal et al. 2013, J. ACM 60:41). What is left
are populations separated by a visible density valley, with the depth of that valley.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_HALF = ((0, 1), (1, 0), (1, 1), (1, -1))   # each touching pair of bins once


@dataclass(frozen=True)
class Grid:
    """A regular grid: ``nx`` bins of width ``dx`` from ``x0``, ``ny`` of ``dy`` from ``y0``."""

    x0: float
    dx: float
    nx: int
    y0: float
    dy: float
    ny: int

    def bin_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column, row) bin of each point, clipped to the grid."""
        i = np.clip(((x - self.x0) / self.dx).astype(np.int64), 0, self.nx - 1)
        j = np.clip(((y - self.y0) / self.dy).astype(np.int64), 0, self.ny - 1)
        return i, j

    def centre(self, i: np.ndarray | int, j: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        return self.x0 + (np.asarray(i) + 0.5) * self.dx, self.y0 + (np.asarray(j) + 0.5) * self.dy


@dataclass(frozen=True, eq=False)
class Landscape:
    """Smoothed density on a grid, split into basins (labels -1 where nothing was seen).

    ``density[i, j]`` and ``counts[i, j]`` are indexed (x bin, y bin). Basin ``k`` has its peak
    at ``peaks[k]`` (bin indices), ``peak_density[k]``, ``mass[k]`` events; ``saddle[k, m]``
    is the density at the pass between basins k and m (0 when they do not touch).
    """

    grid: Grid
    density: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    peaks: np.ndarray
    peak_density: np.ndarray
    mass: np.ndarray
    saddle: np.ndarray

    def peak_xy(self, k: int) -> tuple[float, float]:
        cx, cy = self.grid.centre(self.peaks[k, 0], self.peaks[k, 1])
        return float(cx), float(cy)

    def valley(self, a: int, b: int) -> float:
        """Pass height between basins a and b relative to the lower of their peaks
        (0 = empty valley, 1 = no valley at all)."""
        low = min(self.peak_density[a], self.peak_density[b])
        return float(self.saddle[a, b] / low) if low > 0 else 1.0


def _gaussian_matrix(n: int, sigma_bins: float) -> np.ndarray:
    """(n, n) matrix of a normalised Gaussian kernel: smoothing one axis is one product."""
    offset = np.arange(n)[:, None] - np.arange(n)[None, :]
    k = np.exp(-0.5 * (offset / sigma_bins) ** 2)
    k[np.abs(offset) > 4.0 * sigma_bins] = 0.0
    return k / (sigma_bins * np.sqrt(2.0 * np.pi))


def _smooth(counts: np.ndarray, sigma: tuple[float, float]) -> np.ndarray:
    """Separable Gaussian smoothing with zero padding (mass leaving the grid is lost)."""
    nx, ny = counts.shape
    return _gaussian_matrix(nx, sigma[0]) @ counts.astype(float) @ _gaussian_matrix(ny, sigma[1])


def _shifted(a: np.ndarray, di: int, dj: int, fill: float) -> np.ndarray:
    """``a`` moved so that out[i, j] = a[i + di, j + dj] (``fill`` outside)."""
    out = np.full_like(a, fill)
    nx, ny = a.shape
    out[max(0, -di):nx - max(0, di), max(0, -dj):ny - max(0, dj)] = \
        a[max(0, di):nx - max(0, -di), max(0, dj):ny - max(0, -dj)]
    return out


def _climb(density: np.ndarray) -> np.ndarray:
    """Basin root (flat bin index) of every bin by steepest-ascent pointers and pointer jumping."""
    nx, ny = density.shape
    flat = np.arange(nx * ny).reshape(nx, ny)
    best, target = density.copy(), flat.copy()
    for di, dj in _NEIGHBOURS:
        nb = _shifted(density, di, dj, -np.inf)
        higher = nb > best
        best = np.where(higher, nb, best)
        target = np.where(higher, _shifted(flat, di, dj, 0), target)
    parent = target.ravel()
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt


def _saddles(labels: np.ndarray, density: np.ndarray, k: int) -> np.ndarray:
    """saddle[a, b]: the highest min(density) over touching bin pairs of basins a and b."""
    saddle = np.zeros((k, k))
    for di, dj in _HALF:
        la, lb = labels, _shifted(labels, di, dj, -1)
        h = np.minimum(density, _shifted(density, di, dj, 0.0))
        sel = (la >= 0) & (lb >= 0) & (la != lb)
        np.maximum.at(saddle, (la[sel], lb[sel]), h[sel])
    return np.maximum(saddle, saddle.T)


def landscape(x: np.ndarray, y: np.ndarray, grid: Grid, sigma: float, min_events: float,
              min_depth: float) -> Landscape:
    """Density landscape of the points (x, y) on ``grid`` with a Gaussian of ``sigma`` (in
    the units of x and y); basins with fewer than ``min_events`` events or whose peak rises
    less than ``min_depth`` (a fraction of the peak) above the pass to a higher peak are merged
    into that neighbour."""
    i, j = grid.bin_of(x, y)
    counts = np.bincount(i * grid.ny + j, minlength=grid.nx * grid.ny).reshape(grid.nx, grid.ny)
    density = _smooth(counts, (sigma / grid.dx, sigma / grid.dy))
    floor = density.max() * 1e-6
    root = _climb(density)
    seen = density.ravel() > floor
    roots, inverse = np.unique(root[seen], return_inverse=True)
    labels = np.full(grid.nx * grid.ny, -1)
    labels[seen] = inverse
    labels = labels.reshape(grid.nx, grid.ny)
    k = roots.size
    peak_density = density.ravel()[roots]
    mass = np.bincount(labels[labels >= 0], weights=counts[labels >= 0], minlength=k)
    saddle = _saddles(labels, density, k)
    owner = np.arange(k)
    for b in np.argsort(peak_density):                 # lowest peaks first (persistence order)
        higher = np.flatnonzero((peak_density > peak_density[b]) & (saddle[b] > 0))
        if higher.size == 0:
            continue
        n = higher[np.argmax(saddle[b, higher])]
        if mass[b] < min_events or saddle[b, n] > (1.0 - min_depth) * peak_density[b]:
            owner[owner == b] = n
            mass[n] += mass[b]
            mass[b] = 0.0
            saddle[n] = np.maximum(saddle[n], saddle[b])
            saddle[:, n] = saddle[n]
            saddle[b] = 0.0
            saddle[:, b] = 0.0
            saddle[n, n] = 0.0
    kept = np.flatnonzero(owner == np.arange(k))
    new_index = np.full(k, -1)
    new_index[kept] = np.arange(kept.size)
    final = np.where(labels >= 0, new_index[owner[np.maximum(labels, 0)]], -1)
    peaks = np.column_stack(np.unravel_index(roots[kept], (grid.nx, grid.ny)))
    return Landscape(grid=grid, density=density, counts=counts, labels=final, peaks=peaks,
                     peak_density=peak_density[kept], mass=mass[kept],
                     saddle=saddle[np.ix_(kept, kept)])
