"""Configuration and result records of the gating steps (frozen, numbers a report can store)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from science.qc import QC


@dataclass(frozen=True)
class GatingQCConfig:
    """Thresholds of the gating QC.

    Monocyte counts: SOPs ask for >= 3,000 monocytes; DESIGN.md sets review below 2,000 and
    fail below 500 (a median on fewer events is too noisy for a decision at 8,000 AB/C).
    Separation is Ashman's D between the monocyte cluster and its nearest neighbour
    (:mod:`science.separation`): D > 2 is needed for two Gaussian clusters to
    be cleanly separable, so review below 2; below 1 the clusters are not resolved at all.
    Debris above half of all events or doublets above 30 % of cells point to a bad
    preparation or acquisition (clogging, poor lysis) and ask for a technician's look.

    CD14-dim zone (``gating.monocytes.dim_zone``; shares of the gated monocytes, measured on
    the fit subsample): when CD14-dim monocytes and a shoulder of immature granulocytes occur
    together, the mixture can merge them into one component and then leave the dim monocytes
    out, or take the granulocytes in, while Ashman's D stays high. Review when ungated CD14-dim
    events inside the monocytes' SSC core (median +/- 1 robust SD) exceed 8 % of the gated
    monocytes, or when gated CD14-dim events more than 2 robust SDs above the monocytes' SSC
    exceed 2 %. Measured on the project generator (data_samples.generate, CANTO and CALIBUR,
    seeds 1-8): clean gates stay at <= 4.8 % left out (the shoulder's own SSC tail) and
    <= 1.4 % taken in (a Gaussian SSC tail of CD14-dim monocytes, up to half of them dim);
    merged gates reach >= 12 % left out or >= 2.4 % taken in, with AB/C errors up to 13 %.
    A tube whose monocytes are mostly (~70 %) CD14-dim may get a conservative review.
    """

    monocytes_review_below: int = 2000
    monocytes_fail_below: int = 500
    separation_review_below: float = 2.0
    separation_fail_below: float = 1.0
    debris_review_above: float = 0.5
    doublets_review_above: float = 0.3
    subsample: int = 20000          # events used to fit models (then all events are classified)
    components: int = 8             # Gaussian mixture components on (asinh CD14, asinh SSC)
    ellipse_quantile: float = 0.999  # chi-square(2) quantile bounding each monocyte ellipse
    posterior_min: float = 0.5       # minimum posterior probability of the monocyte components
    doublet_mads: float = 4.0        # singlet band half-width in robust SDs of log10(FSC-A/FSC-H)
    dim_left_out_review_above: float = 0.08  # ungated CD14-dim events at the monocytes' SSC
    dim_taken_in_review_above: float = 0.02  # gated CD14-dim events above the monocytes' SSC
    dim_taken_in_sds: float = 2.0            # "above" = this many robust SDs over the SSC median


@dataclass(frozen=True)
class DebrisGeometry:
    """Debris = events with ``channel`` below ``threshold`` (linear units)."""

    channel: str
    threshold: float
    valley_found: bool      # False when the FSC density had no valley below the cells
    valley_depth: float     # density at the threshold / density at the main FSC peak

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "threshold": self.threshold,
                "valley_found": self.valley_found, "valley_depth": self.valley_depth}


@dataclass(frozen=True)
class DoubletGeometry:
    """Singlets = ``ratio_low <= area/height <= ratio_high`` (lines through the origin)."""

    area_channel: str
    height_channel: str
    ratio_median: float
    ratio_low: float
    ratio_high: float

    def as_dict(self) -> dict[str, object]:
        return {"area_channel": self.area_channel, "height_channel": self.height_channel,
                "ratio_median": self.ratio_median, "ratio_low": self.ratio_low,
                "ratio_high": self.ratio_high}


@dataclass(frozen=True)
class Component:
    """One Gaussian of the (asinh CD14, asinh SSC) mixture, with the role the rules gave it."""

    role: str                                  # lymphocytes | monocytes | granulocytes | other
    weight: float
    mean: tuple[float, float]                  # (asinh CD14, asinh SSC)
    covariance: tuple[tuple[float, float], tuple[float, float]]

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "weight": self.weight, "mean": list(self.mean),
                "covariance": [list(r) for r in self.covariance]}


@dataclass(frozen=True)
class MonocyteGeometry:
    """Automatic monocyte gate in asinh space: posterior of the monocyte components
    >= ``posterior_min`` and inside at least one of their ellipses
    (Mahalanobis distance^2 <= ``distance2_max``)."""

    cd14_channel: str
    ssc_channel: str
    cd14_cofactor: float
    ssc_cofactor: float
    components: tuple[Component, ...]
    distance2_max: float
    posterior_min: float

    @property
    def monocyte_components(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.role == "monocytes")

    def as_dict(self) -> dict[str, object]:
        return {"method": "automatic", "cd14_channel": self.cd14_channel,
                "ssc_channel": self.ssc_channel, "transform": "asinh",
                "cd14_cofactor": self.cd14_cofactor, "ssc_cofactor": self.ssc_cofactor,
                "components": [c.as_dict() for c in self.components],
                "distance2_max": self.distance2_max, "posterior_min": self.posterior_min}


@dataclass(frozen=True)
class TemplateGeometry:
    """A lab's GatingML gate used in place of the automatic monocyte gate."""

    source: str
    gate_name: str
    gate_path: tuple[str, ...]
    gate_type: str
    channels: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"method": "template", "source": self.source, "gate_name": self.gate_name,
                "gate_path": list(self.gate_path), "gate_type": self.gate_type,
                "channels": list(self.channels)}


@dataclass(frozen=True)
class GateStep:
    """One automatic gate: membership, geometry and its QC."""

    mask: np.ndarray
    geometry: DebrisGeometry | DoubletGeometry | MonocyteGeometry | TemplateGeometry | None
    qc: QC
    separation: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class MonocyteGateResult:
    """Debris -> singlets -> monocytes: masks over all events, geometry, counts, QC."""

    masks: Mapping[str, np.ndarray]            # 'cells', 'singlets', 'monocytes'
    counts: Mapping[str, int]                  # 'events', 'cells', 'singlets', 'monocytes'
    debris: DebrisGeometry
    doublets: DoubletGeometry | None
    gate: MonocyteGeometry | TemplateGeometry | None   # None when no monocytes were found
    separation: float | None                   # Ashman's D of the monocyte cluster (automatic gate)
    qc: QC
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def monocytes(self) -> np.ndarray:
        return self.masks["monocytes"]

    def as_dict(self) -> dict[str, object]:
        return {"counts": dict(self.counts), "debris": self.debris.as_dict(),
                "doublets": None if self.doublets is None else self.doublets.as_dict(),
                "gate": None if self.gate is None else self.gate.as_dict(), "separation": self.separation,
                "qc": self.qc.as_dict(), "notes": list(self.notes)}
