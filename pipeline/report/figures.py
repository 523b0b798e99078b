"""The project's figures as charts (:mod:`pipeline.report.chart`): a patient tube's gates, a bead
calibration, the acquisition stability of a tube, a patient's mHLA-DR over ICU days and the
Levey-Jennings control of a detector's bead curves. Drawing only: every number comes from a
stored result or its figure data."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.result import Calibration
from pipeline import formatting as fmt
from pipeline.eligibility import Rules
from pipeline.report.chart import Band, Chart, Density, Line, Panel, Points, Steps
from pipeline.report.figure_data import SampleFigure
from science.qc import QC

if TYPE_CHECKING:
    from pipeline.qc_trend import ControlPoint
    from pipeline.store import StoredMeasurement

QC_COLOURS = {"pass": "#070", "review": "#a60", "fail": "#b00"}
LEVEL_COLOURS = {"fitted": "#1f77b4", "blank": "#888", "saturated": "#d62728", "below_range": "#ff7f0e"}
GREY, RED, BLUE = (110, 110, 110), (214, 39, 40), (31, 119, 180)
RED_HEX = "#d62728"
# How a result counts for screening (patient trend): colour and marker
TREND_STYLE = {"QC pass": ("#070", "o"), "review approved": ("#1f77b4", "o"),
               "awaiting review": ("#a60", "x"), "not counted": ("#888", "x")}


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


def _legend_room(ylim: tuple[float, float], marks: Sequence[object]) -> tuple[float, float]:
    """``ylim`` raised so the legend (top left, one line per labelled mark) sits above the data."""
    entries = sum(1 for m in marks if getattr(m, "label", None) or getattr(m, "legend", None))
    low, high = ylim
    return (low, high + (high - low) * 0.11 * entries)


def whole_ticks(last: int, first: int = 0) -> tuple[float, ...]:
    """Ticks on whole numbers (days, runs) from ``first`` to ``last``, at most about 12 of them."""
    step = next((s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if (last - first) / s <= 12),
                math.ceil((last - first) / 12))
    return tuple(float(v) for v in range(first, last + 1) if (v - first) % step == 0)


def _span(values: list[float], pad: float = 0.15) -> tuple[float, float]:
    """Axis limits around ``values`` with a margin (so no point sits on the frame)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    low, high = min(finite), max(finite)
    margin = max((high - low) * pad, 0.1)
    return (low - margin, high + margin)



def stability_chart(stability: Mapping[str, Any]) -> Chart:
    """The monocytes' PE and CD14 level and the flow rate per bin along the acquisition, relative
    to the run's level (1 = on level), flagged bins as crosses, the kept stretches shaded; from
    the ``stability`` record a gating stores (``axis``, ``kept``, ``status``, ``rate``/``pe``/
    ``cd14`` series of ``position``, ``value``, ``flagged``)."""
    axis = "time (s)" if stability.get("axis") == "time" else "event (acquisition order)"
    rows = [("monocyte level / run level", ((stability.get("pe"), "PE (HLA-DR)", "#1f77b4"),
                                            (stability.get("cd14"), "CD14", "#2ca02c")))]
    if stability.get("rate"):
        rows.append(("flow rate / median", ((stability["rate"], "events per second", "#9467bd"),)))
    positions = [x for _, group in rows for series, _, _ in group if series for x in series["position"]]
    xlim = _span(positions, pad=0.03)
    kept = tuple(Band(start, end, colour="#eaf5ea") for start, end in stability.get("kept") or ())
    panels = []
    for ylabel, group in rows:
        marks: list[object] = [*kept, Line(xlim, (1.0, 1.0), colour="#888")]
        values = [1.0]
        for series, label, colour in group:
            if not series:
                continue
            xs, ys = tuple(series["position"]), tuple(series["value"])
            values += list(ys)
            marks += [Line(xs, ys, colour=colour, width=1.5, label=label), Points(xs, ys, colour=colour)]
            flagged = [(x, y) for x, y, f in zip(xs, ys, series["flagged"]) if f]
            if flagged:
                marks.append(Points(tuple(x for x, _ in flagged), tuple(y for _, y in flagged), colour=RED_HEX,
                                    marker="x", legend="flagged bin"))
        panels.append(Panel(ylabel, axis, "relative", xlim, _legend_room(_span(values, pad=0.2), marks), tuple(marks),
                            height=0.8))
    excluded = stability.get("excluded_share")
    title = (f"Acquisition stability: {stability.get('status', '?')}"
             + (f", {fmt.percent(excluded)} of the run excluded" if excluded is not None else "")
             + ("; " + "; ".join(stability["findings"]) if stability.get("findings") else ""))
    return Chart(title, tuple(panels), columns=1, panel_size=(660, 220),
                 title_colour=QC_COLOURS.get(str(stability.get("status")), "#222"))


def patient_trend_chart(results: Sequence["StoredMeasurement"], rules: Rules, title: str = "mHLA-DR") -> Chart:
    """A patient's AB/C over ICU days: each result with its 95 % interval, coloured by QC (a
    review result counts only once approved), the cut-off line and the sampling window."""
    days = [r.measurement.icu_day for r in results if r.measurement.icu_day is not None]
    last = max(days + [rules.window_last_day + 2])
    values = [r.abc for r in results if r.abc is not None and math.isfinite(r.abc)]
    highs = [r.measurement.abc_interval[1] for r in results if r.measurement.abc_interval]
    top = max(values + highs + [rules.abc_threshold * 1.5]) * 1.05
    marks: list[object] = [
        Band(rules.window_first_day - 0.5, rules.window_last_day + 0.5, colour="#eef3fb",
             label=f"ICU day {rules.window_first_day}-{rules.window_last_day} window"),
        Line((-0.5, last + 0.5), (rules.abc_threshold, rules.abc_threshold), colour="#b00", width=1.5, dash=True,
             label=f"cut-off {fmt.abc(rules.abc_threshold)} AB/C")]
    groups: dict[str, list["StoredMeasurement"]] = {}
    for r in results:
        if r.measurement.icu_day is not None and r.abc is not None and math.isfinite(r.abc):
            groups.setdefault(_trend_status(r), []).append(r)
    for status in sorted(groups):
        found = groups[status]
        colour, marker = TREND_STYLE[status]
        for r in found:
            if r.measurement.abc_interval:
                low, high = r.measurement.abc_interval
                day = float(r.measurement.icu_day)  # type: ignore[arg-type]
                marks.append(Line((day, day), (low, high), colour=colour, width=1.0))
        marks.append(Points(tuple(float(r.measurement.icu_day) for r in found),  # type: ignore[arg-type]
                            tuple(float(r.abc) for r in found),  # type: ignore[arg-type]
                            colour=colour, marker=marker, legend=status,
                            labels=tuple(f"day {r.measurement.icu_day}: {fmt.abc(r.abc)} AB/C "
                                         f"({r.collection_date.isoformat()}, {status})" for r in found)))
    panel = Panel("AB/C by ICU day", "ICU day (admission = 0)", "AB/C", (-0.5, last + 0.5),
                  _legend_room((0.0, top), marks), tuple(marks), note=None if groups else "no result with an ICU day and a value",
                  xticks=whole_ticks(last))
    return Chart(title, (panel,), panel_size=(660, 300))



def _trend_status(r: "StoredMeasurement") -> str:
    """How a result counts for screening, in words (see :func:`pipeline.eligibility.is_decisive`)."""
    if r.qc.status == "pass":
        return "QC pass"
    if r.qc.status == "review" and r.review == "approve":
        return "review approved"
    if r.qc.status == "review" and r.review is None:
        return "awaiting review"
    return "not counted"


def levey_jennings_chart(points: Sequence["ControlPoint"], title: str, first_run: int = 1) -> Chart:
    """Levey-Jennings chart of one detector's bead curves (slope and intercept by run, the first
    of ``points`` being run ``first_run``): each curve against the mean and +/- 2 SD of the
    earlier curves (:mod:`pipeline.qc_trend`); points beyond the limits red, points without
    enough history grey."""
    runs = tuple(float(first_run + i) for i in range(len(points)))
    last = first_run + len(points) - 1
    xlim = (first_run - 0.5, last + 0.5)
    panels = []
    for name, value, mean, sd in (("slope", "slope", "slope_mean", "slope_sd"),
                                  ("intercept", "intercept", "intercept_mean", "intercept_sd")):
        ys = [getattr(p, value) for p in points]
        marks: list[object] = []
        limited = [(x, getattr(p, mean), getattr(p, sd)) for x, p in zip(runs, points)
                   if getattr(p, mean) is not None and getattr(p, sd) is not None]
        if limited:
            xs = tuple(v for x, _, _ in limited for v in (x - 0.5, x + 0.5))
            for k, colour, dash, label in ((0.0, "#555", False, "mean of earlier curves"),
                                           (2.0, "#b00", True, "± 2 SD"), (-2.0, "#b00", True, None)):
                marks.append(Line(xs, tuple(m + k * s for _, m, s in limited for _ in (0, 1)),
                                  colour=colour, dash=dash, label=label))
            ys += [m + k * s for _, m, s in limited for k in (-2.5, 2.5)]
        marks.append(Line(runs, tuple(getattr(p, value) for p in points), colour="#1f77b4"))
        for kind, colour, marker in (("in control", "#1f77b4", "o"), ("beyond 2 SD", RED_HEX, "x"),
                                     ("too little history", "#888", "o")):
            chosen = [(x, p) for x, p in zip(runs, points) if _control_kind(p) == kind]
            if chosen:
                marks.append(Points(tuple(x for x, _ in chosen), tuple(getattr(p, value) for _, p in chosen),
                                    colour=colour, marker=marker, legend=kind,
                                    labels=tuple(f"run {int(x)}, {p.day.isoformat()}: {name} "
                                                 f"{getattr(p, value):.4f}" for x, p in chosen)))
        panels.append(Panel(name, "run (bead tube, in acquisition order)", name, xlim,
                            _legend_room(_span(ys, pad=0.1), marks),
                            tuple(marks), xticks=whole_ticks(last, first=first_run)))
    flagged = sum(1 for p in points if p.flags)
    return Chart(title + (f": {flagged} curve(s) beyond 2 SD" if flagged else ""), tuple(panels),
                 columns=2, panel_size=(420, 300), title_colour="#b00" if flagged else "#222")


def _control_kind(p: "ControlPoint") -> str:
    if p.flags:
        return "beyond 2 SD"
    return "too little history" if p.slope_mean is None else "in control"
