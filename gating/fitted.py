"""A monocyte gate fitted once and applied again (scikit-learn's fit / apply shape).

Fitting is the automatic gate of :mod:`gating.monocytes` (the density landscape of asinh CD14 vs
asinh SSC, once per tube); its geometry, stored with the result, is a :class:`MonocyteGate`: what
applying needs, the two channels, their asinh cofactors and the polygons (the union is the gate). :meth:`MonocyteGate.apply`
tests events against those polygons without refitting anything, so a stored gate, another
candidate population of the same plot, or a gate whose vertices a person moved gives the
monocytes of the same tube again. GatingML 2.0 (Spidlen et al. 2015) carries the same polygons
(:mod:`gating.gatingml`) for FlowKit and FlowJo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gating.polygon import inside
from gating.result import GatePolygon, MonocyteGeometry, Population
from science.transform import asinh

MIN_VERTICES = 3


@dataclass(frozen=True)
class MonocyteGate:
    """The monocyte gate as a fitted estimator: polygons in (asinh(CD14 / c14), asinh(SSC / cssc))."""

    geometry: MonocyteGeometry

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "MonocyteGate":
        """The gate of a stored measurement (``gates["gate"]`` of an automatic gate)."""
        if not record or record.get("method") != "automatic":
            raise ValueError("this result has no automatic monocyte gate to apply again")
        polygons = tuple(GatePolygon(p["name"], tuple((float(a), float(b)) for a, b in p["vertices"]))
                         for p in record["polygons"])
        populations = tuple(Population(p["role"], p["share"], tuple(p["peak"]), p.get("valley"))
                            for p in record.get("populations", ()))
        dim = record.get("dim_zone")
        return cls(MonocyteGeometry(record["cd14_channel"], record["ssc_channel"], float(record["cd14_cofactor"]),
                                    float(record["ssc_cofactor"]), polygons, populations,
                                    GatePolygon(dim["name"], tuple(map(tuple, dim["vertices"]))) if dim else None))

    def with_polygons(self, polygons: Sequence[GatePolygon]) -> "MonocyteGate":
        """The same gate with other polygons (moved vertices, another candidate population)."""
        for p in polygons:
            if len(p.vertices) < MIN_VERTICES or not np.all(np.isfinite(p.as_array())):
                raise ValueError(f"polygon {p.name}: needs at least {MIN_VERTICES} finite vertices")
        return replace(self, geometry=replace(self.geometry, polygons=tuple(polygons), dim_zone=None))

    def to_plot(self, cd14: np.ndarray, ssc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear CD14 and SSC values on the gate's axes."""
        g = self.geometry
        return asinh(cd14, g.cd14_cofactor), asinh(ssc, g.ssc_cofactor)

    def apply(self, events: np.ndarray, channel_names: Sequence[str]) -> np.ndarray:
        """Boolean membership of every event (linear, compensated values) in the union of the polygons."""
        names = list(channel_names)
        g = self.geometry
        missing = [c for c in (g.cd14_channel, g.ssc_channel) if c not in names]
        if missing:
            raise ValueError(f"channels absent from the data: {', '.join(missing)}")
        x, y = self.to_plot(events[:, names.index(g.cd14_channel)], events[:, names.index(g.ssc_channel)])
        found = np.zeros(events.shape[0], dtype=bool)
        for polygon in g.polygons:
            found |= inside(x, y, polygon.as_array())
        return found

