"""A small chart description and its two renderers: SVG (reports and the lab console: fast,
crisp, no plotting library) and PNG through matplotlib (``--figure`` on request only).

A :class:`Chart` is a row of :class:`Panel` s; a panel holds marks in data coordinates:
density images (2-D histograms), lines, steps (1-D histograms), points, bands and labels.
The figures of the project (gates, bead curve, stability, trends) are built as charts in
:mod:`pipeline.report.figures`; nothing here knows about cytometry.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Colour = str


@dataclass(frozen=True)
class Density:
    """A 2-D histogram drawn as an image: ``counts[row, col]``, rows along y from ``extent[2]``."""

    counts: np.ndarray
    extent: tuple[float, float, float, float]      # x0, x1, y0, y1
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Line:
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    colour: Colour = "#222"
    width: float = 1.0
    dash: bool = False
    label: str | None = None


@dataclass(frozen=True)
class Steps:
    """A 1-D histogram: ``counts`` between ``edges`` (len(edges) == len(counts) + 1)."""

    edges: tuple[float, ...]
    counts: tuple[float, ...]
    colour: Colour = "#999"


@dataclass(frozen=True)
class Points:
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    colour: Colour = "#1f77b4"
    marker: str = "o"              # 'o' filled circle, 'x' cross
    labels: tuple[str, ...] = ()
    legend: str | None = None


@dataclass(frozen=True)
class Band:
    """A shaded rectangle spanning x0..x1 (and y0..y1; None = the whole axis)."""

    x0: float | None
    x1: float | None
    y0: float | None = None
    y1: float | None = None
    colour: Colour = "#e8f0fe"
    label: str | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    marks: tuple[object, ...] = ()
    note: str | None = None          # a message drawn in the middle (e.g. "no FSC-A/FSC-H pair")
    height: float = 1.0              # relative height when panels are stacked in one column
    xticks: tuple[float, ...] | None = None   # where to tick x (None: about 5 round values)


@dataclass(frozen=True)
class Chart:
    title: str
    panels: tuple[Panel, ...]
    columns: int = 0                 # 0: all panels in one row
    panel_size: tuple[int, int] = (330, 260)
    title_colour: Colour = "#222"


# -- ticks ----------------------------------------------------------------------------------
def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values between ``low`` and ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs(math.log(s / raw)))
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def tick_label(value: float) -> str:
    """Short tick text: 50k, 1.2M, 0.25, 7."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:g}M"
    if a >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


# -- images ---------------------------------------------------------------------------------
def png_bytes(rgba: np.ndarray) -> bytes:
    """An RGBA uint8 image (rows top to bottom) as PNG (RFC 2083), without a plotting library."""
    height, width, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def density_rgba(layers: list[Density]) -> np.ndarray:
    """Layers of counts on one grid as an RGBA image: each layer's colour, opacity rising with
    log(1 + count); later layers are drawn over earlier ones."""
    rows, cols = layers[0].counts.shape
    out = np.zeros((rows, cols, 4), dtype=float)
    for layer in layers:
        c = np.log1p(np.asarray(layer.counts, dtype=float))
        alpha = np.where(c > 0, 0.25 + 0.75 * c / max(float(c.max()), 1e-9), 0.0)
        colour = np.array(layer.colour, dtype=float) / 255.0
        out[..., :3] = out[..., :3] * (1 - alpha[..., None]) + colour * alpha[..., None]
        out[..., 3] = np.maximum(out[..., 3], alpha)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)[::-1]     # image rows top (high y) first


# -- SVG --------------------------------------------------------------------------------------
_MARGIN = (52, 12, 34, 44)          # left, right, top, bottom (pixels)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


class _Frame:
    """Pixel geometry of one panel."""

    def __init__(self, panel: Panel, x: float, y: float, w: float, h: float) -> None:
        self.panel = panel
        self.left, self.top = x + _MARGIN[0], y + _MARGIN[2]
        self.width, self.height = w - _MARGIN[0] - _MARGIN[1], h - _MARGIN[2] - _MARGIN[3]

    def px(self, value: float) -> float:
        x0, x1 = self.panel.xlim
        return self.left + (value - x0) / (x1 - x0) * self.width

    def py(self, value: float) -> float:
        y0, y1 = self.panel.ylim
        return self.top + self.height - (value - y0) / (y1 - y0) * self.height


def _svg_marks(f: _Frame, clip: str) -> list[str]:
    out: list[str] = []
    p = f.panel
    density = [m for m in p.marks if isinstance(m, Density)]
    if density:
        x0, x1, y0, y1 = density[0].extent
        data = base64.b64encode(png_bytes(density_rgba(density))).decode("ascii")
        out.append(f'<image x="{f.px(x0):.1f}" y="{f.py(y1):.1f}" width="{f.px(x1) - f.px(x0):.1f}" '
                   f'height="{f.py(y0) - f.py(y1):.1f}" preserveAspectRatio="none" clip-path="url(#{clip})" '
                   f'style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>')
    for mark in p.marks:
        if isinstance(mark, Band):
            xa = f.px(mark.x0) if mark.x0 is not None else f.left
            xb = f.px(mark.x1) if mark.x1 is not None else f.left + f.width
            ya = f.py(mark.y1) if mark.y1 is not None else f.top
            yb = f.py(mark.y0) if mark.y0 is not None else f.top + f.height
            out.append(f'<rect x="{min(xa, xb):.1f}" y="{min(ya, yb):.1f}" width="{abs(xb - xa):.1f}" '
                       f'height="{abs(yb - ya):.1f}" fill="{mark.colour}" clip-path="url(#{clip})"/>')
        elif isinstance(mark, Steps) and mark.counts:
            top = max(mark.counts) or 1.0
            pts = []
            for a, b, c in zip(mark.edges[:-1], mark.edges[1:], mark.counts):
                y = f.py(p.ylim[0] + (p.ylim[1] - p.ylim[0]) * 0.95 * c / top)
                pts += [f"{f.px(a):.1f},{y:.1f}", f"{f.px(b):.1f},{y:.1f}"]
            base = f.py(p.ylim[0])
            out.append(f'<polygon points="{f.px(mark.edges[0]):.1f},{base:.1f} {" ".join(pts)} '
                       f'{f.px(mark.edges[-1]):.1f},{base:.1f}" fill="{mark.colour}" stroke="none" '
                       f'clip-path="url(#{clip})"/>')
        elif isinstance(mark, Line):
            pts = " ".join(f"{f.px(x):.1f},{f.py(y):.1f}" for x, y in zip(mark.xs, mark.ys)
                           if math.isfinite(x) and math.isfinite(y))
            dash = ' stroke-dasharray="5 3"' if mark.dash else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{mark.colour}" '
                       f'stroke-width="{mark.width}"{dash} clip-path="url(#{clip})"/>')
        elif isinstance(mark, Points):
            for i, (x, y) in enumerate(zip(mark.xs, mark.ys)):
                if not (math.isfinite(x) and math.isfinite(y)):
                    continue
                cx, cy = f.px(x), f.py(y)
                title = f"<title>{_esc(mark.labels[i])}</title>" if i < len(mark.labels) else ""
                if mark.marker == "x":
                    out.append(f'<path d="M{cx - 4:.1f},{cy - 4:.1f}L{cx + 4:.1f},{cy + 4:.1f}M{cx - 4:.1f},'
                               f'{cy + 4:.1f}L{cx + 4:.1f},{cy - 4:.1f}" stroke="{mark.colour}" '
                               f'stroke-width="1.5">{title}</path>')
                else:
                    out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{mark.colour}">{title}</circle>')
    return out


def _legend(f: _Frame) -> list[str]:
    entries: list[tuple[str, str, str]] = []
    for mark in f.panel.marks:
        label = getattr(mark, "label", None) or getattr(mark, "legend", None)
        if label:
            kind = "rect" if isinstance(mark, (Band, Density)) else "line"
            entries.append((label, getattr(mark, "colour", "#222") if not isinstance(mark, Density)
                            else "rgb{}".format(mark.colour), kind))
    out = []
    for i, (label, colour, kind) in enumerate(entries):
        y = f.top + 12 + i * 13
        x = f.left + 6
        swatch = (f'<rect x="{x}" y="{y - 7}" width="10" height="8" fill="{colour}"/>' if kind == "rect"
                  else f'<line x1="{x}" y1="{y - 3}" x2="{x + 10}" y2="{y - 3}" stroke="{colour}" stroke-width="2"/>')
        out.append(swatch + f'<text x="{x + 14}" y="{y}" font-size="10">{_esc(label)}</text>')
    return out


def _svg_panel(f: _Frame, index: int, uid: str) -> list[str]:
    p = f.panel
    clip = f"clip{uid}{index}"
    out = [f'<clipPath id="{clip}"><rect x="{f.left:.1f}" y="{f.top:.1f}" width="{f.width:.1f}" '
           f'height="{f.height:.1f}"/></clipPath>',
           f'<rect x="{f.left:.1f}" y="{f.top:.1f}" width="{f.width:.1f}" height="{f.height:.1f}" '
           f'fill="#fff" stroke="#888"/>']
    out += _svg_marks(f, clip)
    for t in (p.xticks if p.xticks is not None else ticks(*p.xlim)) if not p.note else ():
        x = f.px(t)
        if f.left - 0.5 <= x <= f.left + f.width + 0.5:
            out.append(f'<line x1="{x:.1f}" y1="{f.top + f.height:.1f}" x2="{x:.1f}" '
                       f'y2="{f.top + f.height + 4:.1f}" stroke="#888"/>'
                       f'<text x="{x:.1f}" y="{f.top + f.height + 15:.1f}" font-size="10" '
                       f'text-anchor="middle">{tick_label(t)}</text>')
    for t in ticks(*p.ylim) if not p.note else ():
        y = f.py(t)
        if f.top - 0.5 <= y <= f.top + f.height + 0.5:
            out.append(f'<line x1="{f.left - 4:.1f}" y1="{y:.1f}" x2="{f.left:.1f}" y2="{y:.1f}" stroke="#888"/>'
                       f'<text x="{f.left - 6:.1f}" y="{y + 3:.1f}" font-size="10" '
                       f'text-anchor="end">{tick_label(t)}</text>')
    out.append(f'<text x="{f.left + f.width / 2:.1f}" y="{f.top + f.height + 30:.1f}" font-size="11" '
               f'text-anchor="middle">{_esc(p.xlabel)}</text>')
    out.append(f'<text transform="translate({f.left - 40:.1f},{f.top + f.height / 2:.1f}) rotate(-90)" '
               f'font-size="11" text-anchor="middle">{_esc(p.ylabel)}</text>')
    out.append(f'<text x="{f.left:.1f}" y="{f.top - 6:.1f}" font-size="11" font-weight="bold">'
               f'{_esc(p.title)}</text>')
    if p.note:
        out.append(f'<text x="{f.left + f.width / 2:.1f}" y="{f.top + f.height / 2:.1f}" font-size="12" '
                   f'text-anchor="middle" fill="#555">{_esc(p.note)}</text>')
    return out + _legend(f)


def to_svg(chart: Chart, uid: str = "c") -> str:
    """The chart as an inline SVG element (``uid`` keeps clip ids unique within one page)."""
    w, h = chart.panel_size
    columns = chart.columns or len(chart.panels)
    weights = [p.height for p in chart.panels]
    rows = math.ceil(len(chart.panels) / columns)
    lines = textwrap.wrap(chart.title, width=max(40, int(columns * w / 6.6))) if chart.title else []
    title_h = 8 + 15 * len(lines) if lines else 4
    row_heights = [max(weights[r * columns:(r + 1) * columns]) * h for r in range(rows)]
    width, height = columns * w, title_h + sum(row_heights)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
           f'width="100%" style="max-width:{width}px" font-family="sans-serif" role="img" '
           f'aria-label="{_esc(chart.title)}">']
    for i, line in enumerate(lines):
        out.append(f'<text x="8" y="{16 + 15 * i}" font-size="12" fill="{chart.title_colour}">{_esc(line)}</text>')
    for i, panel in enumerate(chart.panels):
        r, c = divmod(i, columns)
        top = title_h + sum(row_heights[:r])
        out += _svg_panel(_Frame(panel, c * w, top, w, panel.height * h), i, uid)
    out.append("</svg>")
    return "".join(out)


# -- PNG (matplotlib, on request) ---------------------------------------------------------------
def to_png(chart: Chart, path: Path) -> Path:
    """Draw the chart with matplotlib (Agg) into a PNG file."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = chart.columns or len(chart.panels)
    rows = math.ceil(len(chart.panels) / columns)
    w, h = chart.panel_size
    fig, axes = plt.subplots(rows, columns, figsize=(columns * w / 80, rows * h / 80), squeeze=False,
                             gridspec_kw={"height_ratios": [max(p.height for p in chart.panels[r * columns:(r + 1) * columns])
                                                            for r in range(rows)]})
    for ax in axes.flat[len(chart.panels):]:
        ax.set_axis_off()
    for ax, panel in zip(axes.flat, chart.panels):
        density = [m for m in panel.marks if isinstance(m, Density)]
        if density:
            x0, x1, y0, y1 = density[0].extent
            ax.imshow(density_rgba(density), extent=(x0, x1, y0, y1), aspect="auto", interpolation="nearest")
        for mark in panel.marks:
            if isinstance(mark, Band):
                ax.axvspan(mark.x0 if mark.x0 is not None else panel.xlim[0],
                           mark.x1 if mark.x1 is not None else panel.xlim[1], color=mark.colour, label=mark.label)
            elif isinstance(mark, Steps) and mark.counts:
                ax.stairs(mark.counts, mark.edges, fill=True, color=mark.colour)
            elif isinstance(mark, Line):
                ax.plot(mark.xs, mark.ys, color=mark.colour, lw=mark.width, ls="--" if mark.dash else "-",
                        label=mark.label)
            elif isinstance(mark, Points):
                ax.plot(mark.xs, mark.ys, "x" if mark.marker == "x" else "o", color=mark.colour, ms=5,
                        label=mark.legend)
        ax.set_xlim(*panel.xlim)
        if not any(isinstance(m, Steps) for m in panel.marks):
            ax.set_ylim(*panel.ylim)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(panel.xlabel, fontsize=8)
        ax.set_ylabel(panel.ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        if panel.xticks is not None:
            ax.set_xticks(panel.xticks)
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        if panel.note:
            ax.text(0.5, 0.5, panel.note, ha="center", va="center", transform=ax.transAxes)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(chart.title, fontsize=9, color=chart.title_colour)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

