"""The bead calibration figure: log-fluorescence histogram with the found peaks, the log-log
standard curve with its points, and the residual of each fitted level. Drawing only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from calibration import Calibration  # noqa: E402

_COLOURS = {"fitted": "tab:blue", "blank": "tab:grey", "saturated": "tab:red", "below_range": "tab:orange"}


def draw_calibration_figure(cal: Calibration, path: Path) -> Path:
    """Write the figure of ``cal`` to ``path`` (PNG) and return the path."""
    path = Path(path)
    fig = plt.figure(figsize=(11, 4.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 1], width_ratios=[1.2, 1])
    hist = fig.add_subplot(grid[:, 0])
    pos = cal.events[cal.events > 0]
    if pos.size:
        hist.hist(np.log10(pos), bins=256, color="0.6")
    for p in cal.populations:
        if p.fluorescence is not None and p.fluorescence > 0:
            hist.axvline(np.log10(p.fluorescence), color=_COLOURS.get(p.status, "k"), lw=1)
            hist.annotate(f"{p.bead_value:,.0f}", (np.log10(p.fluorescence), 1.0), xycoords=("data", "axes fraction"),
                          rotation=90, va="top", ha="right", fontsize=7)
    hist.set_xlabel(f"log10 {cal.key.channel or 'fluorescence'}")
    hist.set_ylabel("events")
    hist.set_title(f"Bead peaks ({cal.statistic}); QC {cal.qc.status}", fontsize=10)

    curve_ax = fig.add_subplot(grid[0, 1])
    resid_ax = fig.add_subplot(grid[1, 1], sharex=curve_ax)
    fitted = [p for p in cal.populations if p.status == "fitted"]
    others = [p for p in cal.populations if p.fluorescence and p.fluorescence > 0 and p.bead_value > 0
              and p.status != "fitted"]
    if fitted:
        x = np.log10([p.fluorescence for p in fitted])
        curve_ax.plot(x, np.log10([p.bead_value for p in fitted]), "o", color=_COLOURS["fitted"], label="fitted")
        resid_ax.plot(x, [p.residual for p in fitted], "o", color=_COLOURS["fitted"])
    for p in others:
        curve_ax.plot(np.log10(p.fluorescence), np.log10(p.bead_value), "x", color=_COLOURS.get(p.status, "k"),
                      label=p.status)
    if cal.curve is not None:
        xs = np.linspace(np.log10(cal.curve.f_min) - 0.2, np.log10(cal.curve.f_max) + 0.2, 50)
        curve_ax.plot(xs, cal.curve.slope * xs + cal.curve.intercept, "-", color="k", lw=1,
                      label=f"slope {cal.curve.slope:.3f}, R² {cal.curve.r2:.4f}")
    resid_ax.axhline(0.0, color="k", lw=0.8)
    curve_ax.set_ylabel("log10 bead value")
    curve_ax.legend(fontsize=7, loc="upper left")
    resid_ax.set_ylabel("residual")
    resid_ax.set_xlabel("log10 fluorescence")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
