"""The 'signal over time' figure: the monocytes' PE and CD14 level and the flow rate per bin
along the acquisition, flagged bins marked and the kept stretch shaded. Drawing only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gating import Stability  # noqa: E402
from gating.stability import Series  # noqa: E402


def _plot(ax: plt.Axes, series: Series, label: str, colour: str) -> None:
    x, y = np.asarray(series.position), np.asarray(series.value)
    flagged = np.asarray(series.flagged, dtype=bool)
    ax.plot(x, y, "-o", color=colour, ms=3, lw=1, label=label)
    if flagged.any():
        ax.plot(x[flagged], y[flagged], "x", color="tab:red", ms=7, mew=2)


def draw_stability_figure(path: Path, stability: Stability) -> Path:
    """Write the stability figure of one tube to ``path`` (PNG) and return the path."""
    path = Path(path)
    rows = 2 if stability.rate is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows + 0.6), sharex=True, squeeze=False)
    signal = axes[0, 0]
    for series, label, colour in ((stability.pe, "monocyte PE (HLA-DR)", "tab:blue"),
                                  (stability.cd14, "monocyte CD14", "tab:green")):
        if series is not None:
            _plot(signal, series, label, colour)
    signal.axhline(1.0, color="0.5", lw=0.8)
    signal.set_ylabel("level / run level")
    signal.legend(fontsize=8, loc="lower left")
    if stability.rate is not None:
        _plot(axes[1, 0], stability.rate, "events per second / median", "tab:purple")
        axes[1, 0].axhline(1.0, color="0.5", lw=0.8)
        axes[1, 0].set_ylabel("flow rate / median")
        axes[1, 0].legend(fontsize=8, loc="lower left")
    for ax in axes[:, 0]:
        low, high = ax.get_xlim()
        for start, end in stability.kept:
            ax.axvspan(max(start, low), min(end, high), color="tab:green", alpha=0.07, lw=0)
        ax.set_xlim(low, high)
    axes[-1, 0].set_xlabel("time (s)" if stability.axis == "time" else "event (acquisition order)")
    fig.suptitle(f"acquisition stability: {stability.status}, {stability.excluded_share:.0%} excluded"
                 + ("\n" + "; ".join(stability.findings) if stability.findings else ""), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
