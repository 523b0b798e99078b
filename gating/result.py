"""Configuration and result records of the gating steps (frozen, numbers a report can store)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from science.qc import QC
from gating.stability import Stability, StabilityConfig


@dataclass(frozen=True)
class GatingQCConfig:
    """Thresholds of the gating QC and the settings of the density gate.

    Monocyte counts: SOPs ask for >= 3,000 monocytes; DESIGN.md sets review below 2,000 and
    fail below 500 (a median on fewer events is too noisy for a decision at 8,000 AB/C).
    Debris above half of all events or doublets above 30 % of cells point to a bad
    preparation or acquisition (clogging, poor lysis) and ask for a technician's look.

    Monocyte gate (:mod:`gating.monocytes`): populations are the basins of the smoothed
    density of (asinh CD14, asinh SSC) on a ``grid_bins`` square grid, smoothed with a Gaussian
    of ``bandwidth`` (asinh units, about 0.04 decades), a population needing
    ``population_min_events`` events and a valley at least ``merge_depth`` deep (as a fraction of
    its peak) to every higher neighbour. Monocytes = the CD14-brightest population, at least
    ``cd14_bright_min_decades`` above the granulocytes, with SSC below theirs; the gate is the
    region of its basin above ``contour_fraction`` of its peak. Separation as a person sees
    it: the density at the pass to each neighbouring population, as a fraction of the lower of
    the two peaks; review above ``valley_review_above`` (the monocytes barely stand apart).
    CD14-dim events at the monocytes' scatter are gated both ways; review when the monocytes'
    PE median moves by more than ``dim_shift_review_above`` between the two (the AB/C moves by
    the same share times the bead curve's slope, about 1). Cells of another HLA-DR merged with
    the monocytes without a valley show as a PE median that depends on the CD14 cut: review
    when the CD14-brighter half of the gate is more than ``core_shift_review_above`` (and
    ``core_shift_z`` standard errors) off the whole gate, fail above ``core_shift_fail_above``.
    Margins measured on 36 sound generated tubes (three flavours; clean, left shift, CD14-dim,
    septic mixes): valley <= 0.24, CD14-dim shift <= 1.8 %, core shift 0 (within noise);
    unresolvable mixes give core shifts of +25 % to x50.
    """

    monocytes_review_below: int = 2000
    monocytes_fail_below: int = 500
    debris_review_above: float = 0.5
    doublets_review_above: float = 0.3
    subsample: int = 20000          # events the debris/doublet gates and the monocyte scales use
    doublet_mads: float = 4.0       # singlet band half-width in robust SDs of log10(FSC-A/FSC-H)
    grid_bins: int = 128
    bandwidth: float = 0.1
    population_min_events: int = 40
    merge_depth: float = 0.2
    cd14_bright_min_decades: float = 0.7
    contour_fraction: float = 0.02
    valley_review_above: float = 0.6
    neighbour_min_share: float = 0.01    # populations this large (of singlets) count as neighbours
    dim_ssc_sds: float = 1.0             # CD14-dim zone: monocytes' SSC median +/- this many robust SDs
    dim_shift_review_above: float = 0.05
    core_shift_review_above: float = 0.05
    core_shift_fail_above: float = 0.25
    core_shift_z: float = 3.0
    stability: StabilityConfig = field(default_factory=StabilityConfig)


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
class Population:
    """One population of the (asinh CD14, asinh SSC) density, with the role the rules gave it."""

    role: str                       # monocytes | monocytes_cd14_dim | lymphocytes | granulocytes | other
    share: float                    # of the singlet events
    peak: tuple[float, float]       # (asinh CD14, asinh SSC) of its density peak
    valley: float | None            # pass to the monocytes / the lower peak (None: not touching them)

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "share": self.share, "peak": list(self.peak), "valley": self.valley}


@dataclass(frozen=True)
class GatePolygon:
    """A polygon in (asinh CD14, asinh SSC) with the cofactors of its :class:`MonocyteGeometry`."""

    name: str
    vertices: tuple[tuple[float, float], ...]

    def as_array(self) -> np.ndarray:
        return np.asarray(self.vertices, dtype=float)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "vertices": [list(v) for v in self.vertices]}


@dataclass(frozen=True)
class MonocyteGeometry:
    """Automatic monocyte gate: the union of ``polygons`` in (asinh(CD14 / cd14_cofactor),
    asinh(SSC / ssc_cofactor)). ``dim_zone`` is the band of CD14-dim events at the monocytes'
    scatter that the alternative gate adds (None when the CD14-dim monocytes are gated)."""

    cd14_channel: str
    ssc_channel: str
    cd14_cofactor: float
    ssc_cofactor: float
    polygons: tuple[GatePolygon, ...]
    populations: tuple[Population, ...]
    dim_zone: GatePolygon | None = None

    def as_dict(self) -> dict[str, object]:
        return {"method": "automatic", "cd14_channel": self.cd14_channel,
                "ssc_channel": self.ssc_channel, "transform": "asinh",
                "cd14_cofactor": self.cd14_cofactor, "ssc_cofactor": self.ssc_cofactor,
                "polygons": [p.as_dict() for p in self.polygons],
                "populations": [p.as_dict() for p in self.populations],
                "dim_zone": None if self.dim_zone is None else self.dim_zone.as_dict()}


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
class CD14DimCheck:
    """CD14-dim events at the monocytes' own scatter, gated both ways.

    ``kept``: the gate holds them (a population of their own at the monocytes' SSC) or leaves
    them out (they cannot be told from other CD14-dim cells); ``events`` of them, ``share`` of
    the CD14-bright monocytes; ``pe_median_shift`` = PE median of the monocytes with them /
    without them - 1 (None when there are none or PE is absent).
    """

    kept: bool
    events: int
    share: float
    pe_median_shift: float | None

    def as_dict(self) -> dict[str, object]:
        return {"kept": self.kept, "events": self.events, "share": self.share,
                "pe_median_shift": self.pe_median_shift}


@dataclass(frozen=True)
class GateStep:
    """One automatic gate: membership, geometry and its QC (the monocyte gate adds the
    alternative masks, its separation and the CD14-dim check)."""

    mask: np.ndarray
    geometry: DebrisGeometry | DoubletGeometry | MonocyteGeometry | TemplateGeometry | None
    qc: QC
    separation: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    alternatives: Mapping[str, np.ndarray] = field(default_factory=dict)
    cd14_dim: CD14DimCheck | None = None
    core_shift: float | None = None


@dataclass(frozen=True)
class MonocyteGateResult:
    """Stable acquisition -> debris -> singlets -> monocytes: masks over all events, geometry,
    counts, QC.

    ``masks``: 'stable' (events kept by the acquisition-stability check), 'cells', 'singlets'
    and 'monocytes' (each within the previous). ``alternatives``: the monocytes gated both
    ways for the CD14-dim events at their scatter, 'cd14_bright' and 'with_cd14_dim' (one of
    them is 'monocytes'), so an AB/C can be computed both ways; ``cd14_dim`` says by how much
    the PE median moves. ``core_shift``: PE median of the CD14-brighter half of the monocytes
    / that of all of them - 1 (0 when within noise). ``separation``: depth of the shallowest
    density valley between the monocytes and a neighbouring population (1 = empty valley,
    0 = none; automatic gate only).
    """

    masks: Mapping[str, np.ndarray]
    counts: Mapping[str, int]                  # 'events', 'stable', 'cells', 'singlets', 'monocytes'
    debris: DebrisGeometry | None              # None when the cells could not be found at all
    doublets: DoubletGeometry | None
    gate: MonocyteGeometry | TemplateGeometry | None   # None when no monocytes were found
    separation: float | None
    qc: QC
    notes: tuple[str, ...] = field(default_factory=tuple)
    alternatives: Mapping[str, np.ndarray] = field(default_factory=dict)
    cd14_dim: CD14DimCheck | None = None
    core_shift: float | None = None
    stability: Stability | None = None

    @property
    def monocytes(self) -> np.ndarray:
        return self.masks["monocytes"]

    def as_dict(self) -> dict[str, object]:
        return {"counts": dict(self.counts), "debris": None if self.debris is None else self.debris.as_dict(),
                "doublets": None if self.doublets is None else self.doublets.as_dict(),
                "gate": None if self.gate is None else self.gate.as_dict(), "separation": self.separation,
                "cd14_dim": None if self.cd14_dim is None else self.cd14_dim.as_dict(),
                "core_shift": self.core_shift,
                "stability": None if self.stability is None else self.stability.as_dict(),
                "qc": self.qc.as_dict(), "notes": list(self.notes)}
