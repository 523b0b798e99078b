"""Polygon gates: drawn around a region of a density grid, and applied to events.

A gate drawn on a density plot must be a polygon for GatingML 2.0 (Spidlen et al. 2015,
Cytometry A 87:683) and FlowJo to reproduce it. :func:`star_polygon` walks rays out of a
region's peak until they leave the region, so the polygon follows density valleys and contour
lines; :func:`inside` applies it with the even-odd (crossing-number) rule (Shimrat 1962,
CACM 5:434), which for a simple polygon is the point-in-polygon test every gating tool uses.
"""

from __future__ import annotations

import numpy as np

from gating.density import Grid

_FAR = 1000.0    # bins: where a ray that leaves the grid still inside the region puts its vertex


def star_polygon(region: np.ndarray, grid: Grid, start: tuple[int, int], rays: int = 72,
                 step: float = 0.25) -> np.ndarray:
    """Vertices (k, 2) in data units of the polygon seen from bin ``start`` of the boolean
    ``region`` (indexed like the grid: [x bin, y bin]): along each of ``rays`` directions the
    vertex is where the ray first leaves the region (half a bin beyond the last bin inside).
    A ray still inside at the grid's edge ends far outside it, so the gate stays open there."""
    nx, ny = region.shape
    angles = np.linspace(0.0, 2.0 * np.pi, rays, endpoint=False)
    radii = np.arange(0.0, float(max(nx, ny)) * 1.5, step)
    u = start[0] + 0.5 + np.outer(np.cos(angles), radii)      # continuous bin coordinates
    v = start[1] + 0.5 + np.outer(np.sin(angles), radii)
    on_grid = (u >= 0) & (u < nx) & (v >= 0) & (v < ny)
    hit = np.zeros_like(on_grid)
    hit[on_grid] = region[u[on_grid].astype(int), v[on_grid].astype(int)]
    leaves = ~hit
    first_out = np.argmax(leaves, axis=1)                       # first step not inside the region
    out_of_grid = ~on_grid[np.arange(rays), first_out]
    r = np.where(out_of_grid, _FAR, np.maximum(radii[first_out] - step / 2.0, 0.5))
    x = grid.x0 + (start[0] + 0.5 + r * np.cos(angles)) * grid.dx
    y = grid.y0 + (start[1] + 0.5 + r * np.sin(angles)) * grid.dy
    return np.column_stack([x, y])


def inside(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Membership of the points (x, y) in the polygon (even-odd rule), bounding box first."""
    vx, vy = vertices[:, 0], vertices[:, 1]
    out = np.zeros(x.shape[0], dtype=bool)
    box = np.flatnonzero((x >= vx.min()) & (x <= vx.max()) & (y >= vy.min()) & (y <= vy.max()))
    px, py = x[box], y[box]
    hit = np.zeros(box.size, dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > py) != (y2 > py)
        x_cross = x1 + (py - y1) * ((x2 - x1) / (y2 - y1))
        hit ^= crosses & (px < x_cross)
    out[box] = hit
    return out
