"""What a patient tube's figure needs, computed once from its events and gates while the tube is
in memory (numpy only), and kept beside the reports so the figure can be drawn again later
without reading the FCS file: density grids, gate outlines and the monocytes' PE histogram."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gating.result import MonocyteGateResult, MonocyteGeometry
from pipeline.acquisition import Acquisition
from science.transform import asinh

GRID = 128
PE_BINS = 100


@dataclass(frozen=True)
class Grid:
    """Counts of two populations on one 2-D grid (``extent`` = x0, x1, y0, y1)."""

    extent: tuple[float, float, float, float]
    background: np.ndarray
    foreground: np.ndarray


@dataclass(frozen=True)
class SampleFigure:
    """Figure data of one patient tube (display coordinates, labels included)."""

    gate_labels: tuple[str, str]
    gate: Grid
    gate_outlines: tuple[np.ndarray, ...]          # closed polylines (n, 2) in the gate's display space
    dim_zone: tuple[np.ndarray, ...]                # the CD14-dim band the other gate choice adds (0 or 1)
    monocytes: int
    singlet_labels: tuple[str, str] | None          # None: no FSC area/height pair
    singlet: Grid | None
    singlet_lines: tuple[float, ...]                # area/height ratios bounding the singlets
    singlet_counts: tuple[int, int]                 # (singlets, cells)
    pe_label: str
    pe_edges: np.ndarray                            # log10 PE bin edges
    pe_counts: np.ndarray
    pe_statistic: float | None
    statistic: str

    @staticmethod
    def of(acq: Acquisition, gating: MonocyteGateResult, pe_statistic: float | None,
           statistic: str = "median") -> "SampleFigure":
        roles = acq.roles
        ssc_name = roles.ssc_a or roles.ssc_h or ""
        cd14, ssc = acq.column(roles.cd14 or ""), acq.column(ssc_name)
        mono = gating.monocytes
        geometry = gating.gate
        if isinstance(geometry, MonocyteGeometry):
            x, y = asinh(cd14, geometry.cd14_cofactor), asinh(ssc, geometry.ssc_cofactor)
            labels = (f"CD14 ({roles.cd14}, asinh)", f"SSC ({ssc_name}, asinh)")
            outlines = tuple(p.as_array() for p in geometry.polygons)
            dim_zone = (geometry.dim_zone.as_array(),) if geometry.dim_zone is not None else ()
        else:
            x, y = np.log10(np.clip(cd14, 1, None)), np.log10(np.clip(ssc, 1, None))
            labels, outlines, dim_zone = (f"CD14 ({roles.cd14}, log10)", f"SSC ({ssc_name}, log10)"), (), ()
        gate = _grid(x, y, ~mono, mono, include=outlines + dim_zone)
        singlet, singlet_labels, lines = None, None, ()
        counts = gating.counts
        if gating.doublets is not None:
            d = gating.doublets
            height, area = acq.column(d.height_channel), acq.column(d.area_channel)
            cells = gating.masks["cells"]
            singlet = _grid(height, area, cells, np.zeros_like(cells), low=0.0, top=99.5)
            singlet_labels, lines = (d.height_channel, d.area_channel), (d.ratio_low, d.ratio_high)
        pe = acq.column(roles.pe or "")[mono]
        logs = np.log10(pe[pe > 0]) if pe.size else np.empty(0)
        lo, hi = (float(logs.min()), float(logs.max())) if logs.size else (0.0, 1.0)
        pe_counts, pe_edges = np.histogram(logs, bins=PE_BINS, range=(lo, hi if hi > lo else lo + 1.0))
        return SampleFigure(gate_labels=labels, gate=gate, gate_outlines=outlines, dim_zone=dim_zone,
                            monocytes=int(counts["monocytes"]),
                            singlet_labels=singlet_labels, singlet=singlet, singlet_lines=lines,
                            singlet_counts=(int(counts["singlets"]), int(counts["cells"])),
                            pe_label=f"HLA-DR PE ({roles.pe}, log10, monocytes)", pe_edges=pe_edges, pe_counts=pe_counts,
                            pe_statistic=pe_statistic, statistic=statistic)

    def save(self, path: Path) -> Path:
        """Write the figure data (``.npz``: arrays plus a JSON header)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"gate_background": self.gate.background, "gate_foreground": self.gate.foreground,
                  "pe_edges": self.pe_edges, "pe_counts": self.pe_counts}
        arrays.update({f"outline_{i}": o for i, o in enumerate(self.gate_outlines)})
        arrays.update({f"dim_zone_{i}": o for i, o in enumerate(self.dim_zone)})
        if self.singlet is not None:
            arrays.update(singlet_background=self.singlet.background, singlet_foreground=self.singlet.foreground)
        meta = {"gate_labels": self.gate_labels, "gate_extent": self.gate.extent,
                "outlines": len(self.gate_outlines), "dim_zones": len(self.dim_zone), "monocytes": self.monocytes,
                "singlet_labels": self.singlet_labels,
                "singlet_extent": self.singlet.extent if self.singlet is not None else None,
                "singlet_lines": self.singlet_lines, "singlet_counts": self.singlet_counts,
                "pe_label": self.pe_label, "pe_statistic": self.pe_statistic, "statistic": self.statistic}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)
        return path

    @staticmethod
    def load(path: Path) -> "SampleFigure":
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            singlet = None
            if meta["singlet_extent"] is not None:
                singlet = Grid(tuple(meta["singlet_extent"]), data["singlet_background"], data["singlet_foreground"])
            return SampleFigure(
                gate_labels=tuple(meta["gate_labels"]),
                gate=Grid(tuple(meta["gate_extent"]), data["gate_background"], data["gate_foreground"]),
                gate_outlines=tuple(data[f"outline_{i}"] for i in range(meta["outlines"])),
                dim_zone=tuple(data[f"dim_zone_{i}"] for i in range(meta["dim_zones"])),
                monocytes=meta["monocytes"],
                singlet_labels=tuple(meta["singlet_labels"]) if meta["singlet_labels"] else None,
                singlet=singlet, singlet_lines=tuple(meta["singlet_lines"]),
                singlet_counts=tuple(meta["singlet_counts"]), pe_label=meta["pe_label"],
                pe_edges=data["pe_edges"], pe_counts=data["pe_counts"], pe_statistic=meta["pe_statistic"],
                statistic=meta["statistic"])


def _grid(x: np.ndarray, y: np.ndarray, background: np.ndarray, foreground: np.ndarray,
          low: float | None = None, top: float = 99.9, include: tuple[np.ndarray, ...] = ()) -> Grid:
    """Counts of both populations on a grid spanning the data (and the ``include`` outlines)."""
    finite = np.isfinite(x) & np.isfinite(y)
    xs, ys = x[finite], y[finite]
    if xs.size == 0:
        return Grid((0.0, 1.0, 0.0, 1.0), np.zeros((GRID, GRID), int), np.zeros((GRID, GRID), int))
    def span(v: np.ndarray, axis: int) -> tuple[float, float]:
        """The robust span of ``v`` (0.1st .. ``top`` percentile, widened to the outlines) with a
        margin of 4 % each side, so no population or gate is cut at the frame."""
        q_low, q_top = (float(q) for q in np.percentile(v, [0.1, top]))
        a = q_low if low is None else low
        b = q_top
        for outline in include:
            a = min(a, float(outline[:, axis].min())) if low is None else a
            b = max(b, float(outline[:, axis].max()))
        b = b if b > a else a + 1.0
        pad = 0.04 * (b - a)
        return (a - pad if low is None else a), b + pad

    (x0, x1), (y0, y1) = span(xs, 0), span(ys, 1)
    extent = (x0, x1, y0, y1)
    # One bin index per event on the uniform grid (as numpy.histogram2d bins it: rows y, columns
    # x, the last bin closed), shared by both populations.
    inside = finite & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    col = np.minimum(((x[inside] - x0) * (GRID / (x1 - x0))).astype(np.intp), GRID - 1)
    row = np.minimum(((y[inside] - y0) * (GRID / (y1 - y0))).astype(np.intp), GRID - 1)
    cell = row * GRID + col

    def counts(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cell[mask[inside]], minlength=GRID * GRID).reshape(GRID, GRID).astype(np.int32)

    return Grid(extent, counts(background), counts(foreground))

