"""The project's figures as charts (:mod:`pipeline.report.chart`): a patient tube's gates, a bead
calibration. Drawing only: every number comes from a stored result or its figure data."""

from __future__ import annotations

import math

import numpy as np

from calibration.result import Calibration
from pipeline import formatting as fmt
from pipeline.report.chart import Chart, Density, Line, Panel, Points, Steps
from pipeline.report.figure_data import SampleFigure
from science.qc import QC

QC_COLOURS = {"pass": "#070", "review": "#a60", "fail": "#b00"}
LEVEL_COLOURS = {"fitted": "#1f77b4", "blank": "#888", "saturated": "#d62728", "below_range": "#ff7f0e"}
GREY, RED, BLUE = (110, 110, 110), (214, 39, 40), (31, 119, 180)


def qc_title(what: str, qc: QC) -> str:
    """``what: QC review - reason; reason`` (the status a figure is drawn under)."""
    return f"{what}: QC {qc.status}" + (" - " + "; ".join(qc.reasons) if qc.reasons else "")


def gating_chart(fig: SampleFigure, qc: QC, title: str = "Gates") -> Chart:
    """SSC vs CD14 with the monocyte gate, FSC-A vs FSC-H with the singlet band, monocyte PE."""
    x0, x1, y0, y1 = fig.gate.extent
    gate = Panel(f"monocytes ({fig.monocytes:,})", fig.gate_labels[0], fig.gate_labels[1], (x0, x1), (y0, y1),
                 (Density(fig.gate.background, fig.gate.extent, GREY),
                  Density(fig.gate.foreground, fig.gate.extent, RED),
                  *(Line(tuple(o[:, 0]), tuple(o[:, 1]), colour="#b00", width=1.5) for o in _closed(fig.gate_outlines)),
                  *(Line(tuple(o[:, 0]), tuple(o[:, 1]), colour="#b00", width=1.0, dash=True,
                         label="CD14-dim band (left out)") for o in _closed(fig.dim_zone))))
    if fig.singlet is not None and fig.singlet_labels is not None:
        sx0, sx1, sy0, sy1 = fig.singlet.extent
        singlets, cells = fig.singlet_counts
        singlet = Panel(f"singlets ({singlets:,} of {cells:,} cells)", fig.singlet_labels[0], fig.singlet_labels[1],
                        (sx0, sx1), (sy0, sy1),
                        (Density(fig.singlet.background, fig.singlet.extent, GREY),
                         *(Line((0.0, sx1), (0.0, r * sx1), colour="#1f77b4") for r in fig.singlet_lines)))
    else:
        singlet = Panel("singlets", "", "", (0.0, 1.0), (0.0, 1.0), note="no FSC area/height pair: doublets not excluded")
    edges = tuple(float(e) for e in fig.pe_edges)
    marks: list[object] = [Steps(edges, tuple(float(c) for c in fig.pe_counts))]
    if fig.pe_statistic is not None and fig.pe_statistic > 0:
        v = math.log10(fig.pe_statistic)
        marks.append(Line((v, v), (0.0, 1.0), colour="#b00", width=1.5,
                          label=f"{fig.statistic} {fmt.number(fig.pe_statistic)}"))
    pe = Panel("monocyte PE", fig.pe_label, "events (relative)", (edges[0], edges[-1]), (0.0, 1.0), tuple(marks))
    return Chart(qc_title(title, qc), (gate, singlet, pe), title_colour=QC_COLOURS.get(qc.status, "#222"))


def calibration_chart(cal: Calibration, title: str = "Bead calibration") -> Chart:
    """Bead peaks on the log-fluorescence histogram; the log-log standard curve; residuals."""
    h = cal.histogram
    channel = cal.key.channel or "fluorescence"
    if h.counts:
        edges = tuple(h.start + i * h.step for i in range(len(h.counts) + 1))
        xlim = (edges[0], edges[-1])
    else:
        edges, xlim = (), _span([math.log10(p.fluorescence) for p in cal.populations if p.fluorescence])
    peaks: list[object] = [Steps(edges, tuple(float(c) for c in h.counts))] if h.counts else []
    for p in cal.populations:
        if p.fluorescence and p.fluorescence > 0:
            v = math.log10(p.fluorescence)
            peaks.append(Line((v, v), (0.0, 1.0), colour=LEVEL_COLOURS.get(p.status, "#222")))
    hist = Panel(f"bead peaks ({cal.statistic})", f"log10 {channel}", "events (relative)", xlim, (0.0, 1.0),
                 tuple(peaks), note=None if h.counts else "no bead histogram kept")
    found = [p for p in cal.populations if p.fluorescence and p.fluorescence > 0 and p.bead_value > 0]
    fitted = [p for p in found if p.status == "fitted"]
    others = [p for p in found if p.status != "fitted"]
    xs = [math.log10(p.fluorescence) for p in found]  # type: ignore[arg-type]
    ys = [math.log10(p.bead_value) for p in found]
    curve_marks: list[object] = []
    if cal.curve is not None:
        lx = np.linspace(math.log10(cal.curve.f_min) - 0.2, math.log10(cal.curve.f_max) + 0.2, 20)
        curve_marks.append(Line(tuple(lx), tuple(cal.curve.slope * lx + cal.curve.intercept),
                                label=f"slope {cal.curve.slope:.3f}, R² {cal.curve.r2:.4f}"))
    curve_marks.append(Points(tuple(math.log10(p.fluorescence) for p in fitted),  # type: ignore[arg-type]
                              tuple(math.log10(p.bead_value) for p in fitted), colour=LEVEL_COLOURS["fitted"],
                              labels=tuple(f"{p.bead_value:,.0f} PE/bead" for p in fitted)))
    for p in others:
        curve_marks.append(Points((math.log10(p.fluorescence),), (math.log10(p.bead_value),),  # type: ignore[arg-type]
                                  colour=LEVEL_COLOURS.get(p.status, "#222"), marker="x", legend=p.status))
    curve = Panel("standard curve", f"log10 {channel}", "log10 PE per bead", _span(xs), _span(ys), tuple(curve_marks))
    residuals = [p.residual for p in fitted if p.residual is not None]
    bound = max([abs(r) for r in residuals] + [0.02]) * 1.3
    resid = Panel("residuals", f"log10 {channel}", "decades", _span(xs), (-bound, bound),
                  (Line(_span(xs), (0.0, 0.0), colour="#888"),
                   Points(tuple(math.log10(p.fluorescence) for p in fitted if p.residual is not None),  # type: ignore[arg-type]
                          tuple(p.residual for p in fitted if p.residual is not None),  # type: ignore[misc]
                          colour=LEVEL_COLOURS["fitted"])))
    return Chart(qc_title(title, cal.qc), (hist, curve, resid), title_colour=QC_COLOURS.get(cal.qc.status, "#222"))


def _closed(outlines: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Polygons as closed polylines (the first vertex repeated at the end)."""
    return tuple(np.vstack([o, o[:1]]) for o in outlines if len(o))


def _span(values: list[float], pad: float = 0.15) -> tuple[float, float]:
    """Axis limits around ``values`` with a margin (so no point sits on the frame)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    low, high = min(finite), max(finite)
    margin = max((high - low) * pad, 0.1)
    return (low - margin, high + margin)

