"""The gating figure: SSC vs CD14 with the monocyte gate, FSC-A vs FSC-H with the singlet band
(or a note where the file has no such pair), and the monocytes' PE histogram with the
statistic marked. Drawing only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from science.sampling import subsample_index  # noqa: E402
from gating import MonocyteGateResult, MonocyteGeometry  # noqa: E402
from science.transform import asinh  # noqa: E402

_MAX_POINTS = 30000


def _ellipse(mean, cov, d2: float, **style) -> Ellipse:
    values, vectors = np.linalg.eigh(np.asarray(cov))
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    width, height = 2 * np.sqrt(d2 * values[::-1])
    return Ellipse(mean, width, height, angle=angle, fill=False, **style)


def draw_gating_figure(path: Path, events: np.ndarray, channel_names: Sequence[str],
                       roles: Mapping[str, str | None], result: MonocyteGateResult,
                       statistic_value: float | None = None, statistic: str = "median",
                       seed: int = 0) -> Path:
    """Write the gating figure of one tube to ``path`` (PNG) and return the path."""
    path = Path(path)
    names = list(channel_names)
    shown = subsample_index(events.shape[0], _MAX_POINTS, seed)
    mono = result.monocytes
    fig, (ax_gate, ax_singlet, ax_pe) = plt.subplots(1, 3, figsize=(15, 4.6))

    ssc_name = roles.get("ssc_a") or roles.get("ssc_h")
    cd14, ssc = events[shown, names.index(roles["cd14"])], events[shown, names.index(ssc_name)]
    gate = result.gate
    if isinstance(gate, MonocyteGeometry):
        x, y = asinh(cd14, gate.cd14_cofactor), asinh(ssc, gate.ssc_cofactor)
        ax_gate.set_xlabel(f"asinh({roles['cd14']} / {gate.cd14_cofactor:.3g})")
        ax_gate.set_ylabel(f"asinh({ssc_name} / {gate.ssc_cofactor:.3g})")
        for c in gate.monocyte_components:
            ax_gate.add_patch(_ellipse(c.mean, c.covariance, gate.distance2_max,
                                       color="tab:red", lw=1.5))
    else:
        x, y = np.log10(np.clip(cd14, 1, None)), np.log10(np.clip(ssc, 1, None))
        ax_gate.set_xlabel(f"log10 {roles['cd14']}")
        ax_gate.set_ylabel(f"log10 {ssc_name}")
        if gate is not None:
            ax_gate.set_title(f"template gate {gate.gate_name}", fontsize=9)
    ax_gate.scatter(x[~mono[shown]], y[~mono[shown]], s=1, c="0.6", rasterized=True)
    ax_gate.scatter(x[mono[shown]], y[mono[shown]], s=1, c="tab:red", rasterized=True,
                    label=f"monocytes ({result.counts['monocytes']})")
    ax_gate.legend(loc="lower right", fontsize=8, markerscale=8)
    ax_gate.set_title(ax_gate.get_title() or "monocyte gate (SSC vs CD14)", fontsize=9)

    if result.doublets is not None:
        d = result.doublets
        area = events[shown, names.index(d.area_channel)]
        height = events[shown, names.index(d.height_channel)]
        cells = result.masks["cells"][shown]
        ax_singlet.scatter(height[cells], area[cells], s=1, c="0.5", rasterized=True)
        top = np.percentile(height[cells], 99.5) if cells.any() else 1.0
        for ratio in (d.ratio_low, d.ratio_high):
            ax_singlet.plot([0, top], [0, ratio * top], color="tab:blue", lw=1)
        ax_singlet.set_xlabel(d.height_channel)
        ax_singlet.set_ylabel(d.area_channel)
        ax_singlet.set_title(f"singlets ({result.counts['singlets']} of "
                             f"{result.counts['cells']} cells)", fontsize=9)
    else:
        ax_singlet.text(0.5, 0.5, "no FSC area/height pair:\ndoublets not excluded",
                        ha="center", va="center", transform=ax_singlet.transAxes)
        ax_singlet.set_axis_off()

    pe = events[mono, names.index(roles["pe"])]
    positive = pe[pe > 0]
    if positive.size:
        ax_pe.hist(np.log10(positive), bins=128, color="0.6")
    if statistic_value is not None and statistic_value > 0:
        ax_pe.axvline(np.log10(statistic_value), color="tab:red",
                      label=f"{statistic} {statistic_value:.4g}")
        ax_pe.legend(fontsize=8)
    ax_pe.set_xlabel(f"log10 {roles['pe']} (monocytes)")
    ax_pe.set_ylabel("events")
    fig.suptitle(f"QC {result.qc.status}" + (": " + "; ".join(result.qc.reasons)
                                              if result.qc.reasons else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
