"""A lab's GatingML 2.0 gate, loaded and applied through FlowKit's gate objects.

The template is parsed by ``flowkit.parse_gating_xml`` into a GatingStrategy; the chosen gate
and its ancestors (and any gates a Boolean gate refers to) are evaluated on the events with
the template's own transforms (GatingML 2.0, Spidlen et al. 2015, Cytometry A 87:683).
Dimensions are matched to the data by channel name ($PnN). Compensation: events are passed
already compensated with the file's own spillover (``compensation-ref="FCS"``); dimensions
marked ``uncompensated`` receive the same values, which is exact for scatter channels and for
data without spillover. Templates carrying their own matrices, ratio dimensions or quadrant
gates are refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import flowkit
import numpy as np
import pandas as pd
from flowkit import gates as fk_gates

from gating.result import TemplateGeometry

_SUPPORTED = (fk_gates.RectangleGate, fk_gates.PolygonGate, fk_gates.EllipsoidGate,
              fk_gates.BooleanGate)


@dataclass(frozen=True)
class TemplateGate:
    """One gate of a parsed GatingML template, with the path of its ancestors."""

    strategy: flowkit.GatingStrategy
    gate_name: str
    gate_path: tuple[str, ...]
    source: str

    @property
    def channels(self) -> tuple[str, ...]:
        """The channel names every gate evaluated for this one needs."""
        names: list[str] = []
        for gate in _gates_needed(self.strategy, self.gate_name, self.gate_path):
            names += [d.id for d in gate.dimensions if d.id not in names]
        return tuple(names)

    def geometry(self) -> TemplateGeometry:
        gate = self.strategy.get_gate(self.gate_name, self.gate_path)
        return TemplateGeometry(source=self.source, gate_name=self.gate_name,
                                gate_path=self.gate_path, gate_type=gate.gate_type,
                                channels=self.channels)


Spill = tuple[Sequence[str], np.ndarray]        # (channel names in matrix order, spillover matrix)


def same_spillover(matrix: object, spillover: Spill | None) -> bool:
    """Whether a template's ``spectrumMatrix`` is the file's own spillover (same channels and
    values in any order): its compensation is then the one the events already carry."""
    if spillover is None:
        return False
    channels, values = list(spillover[0]), np.asarray(spillover[1], dtype=float)
    detectors = list(getattr(matrix, "detectors", []))
    if sorted(detectors) != sorted(channels) or list(getattr(matrix, "fluorochromes", detectors)) != detectors:
        return False
    order = [channels.index(d) for d in detectors]
    return bool(np.allclose(np.asarray(matrix.matrix, dtype=float), values[np.ix_(order, order)], atol=1e-9))


def load_template_gate(gatingml_path: str | Path, gate_name: str, spillover: Spill | None = None) -> TemplateGate:
    """Parse a GatingML 2.0 file and select ``gate_name`` (must name exactly one gate). A
    dimension compensated with a matrix of the template is accepted only when that matrix is the
    file's own ``spillover`` (as ``analyze --gating-ml`` writes it)."""
    strategy = flowkit.parse_gating_xml(str(gatingml_path))
    paths = strategy.find_matching_gate_paths(gate_name)
    if len(paths) != 1:
        raise ValueError(f"{gatingml_path}: gate {gate_name!r} found {len(paths)} times "
                         f"(gates: {', '.join(g for g, _ in strategy.get_gate_ids())})")
    template = TemplateGate(strategy=strategy, gate_name=gate_name, gate_path=tuple(paths[0]),
                            source=str(gatingml_path))
    for gate in _gates_needed(strategy, gate_name, template.gate_path):
        _check_supported(gate, strategy, spillover)
    return template


def _gates_needed(strategy: flowkit.GatingStrategy, name: str,
                  path: tuple[str, ...]) -> list[object]:
    gate = strategy.get_gate(name, path)
    needed = [gate]
    if path[-1] != "root":
        needed += _gates_needed(strategy, path[-1], path[:-1])
    if isinstance(gate, fk_gates.BooleanGate):
        for ref in gate.gate_refs:
            needed += _gates_needed(strategy, ref["ref"], tuple(ref["path"]))
    return needed


def _check_supported(gate: object, strategy: flowkit.GatingStrategy, spillover: Spill | None = None) -> None:
    if not isinstance(gate, _SUPPORTED):
        raise ValueError(f"gate {gate.gate_name}: {type(gate).__name__} is not supported")
    for dim in gate.dimensions:
        if not isinstance(dim, flowkit.Dimension):
            raise ValueError(f"gate {gate.gate_name}: {type(dim).__name__} is not supported")
        own = same_spillover(strategy.comp_matrices.get(dim.compensation_ref), spillover)
        if dim.compensation_ref not in (None, "uncompensated", "FCS") and not own:
            raise ValueError(f"gate {gate.gate_name}: compensation {dim.compensation_ref!r} "
                             "from the template is not supported (use the file's spillover)")
        if dim.transformation_ref is not None:
            strategy.get_transform(dim.transformation_ref)


def apply_template_gate(template: TemplateGate, events: np.ndarray,
                        channel_names: Sequence[str]) -> np.ndarray:
    """Boolean membership of every event in the template gate (ancestors included)."""
    names = list(channel_names)
    missing = [c for c in template.channels if c not in names]
    if missing:
        raise ValueError(f"template {template.source}: channels absent from the data: "
                         f"{', '.join(missing)}")
    cache: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    return _membership(template.strategy, template.gate_name, template.gate_path, events,
                       names, cache)


def _membership(strategy: flowkit.GatingStrategy, name: str, path: tuple[str, ...],
                events: np.ndarray, names: list[str],
                cache: dict[tuple[str, tuple[str, ...]], np.ndarray]) -> np.ndarray:
    key = (name, path)
    if key in cache:
        return cache[key]
    gate = strategy.get_gate(name, path)
    if isinstance(gate, fk_gates.BooleanGate):
        refs = {(r["ref"], "/".join(r["path"])):
                _membership(strategy, r["ref"], tuple(r["path"]), events, names, cache)
                for r in gate.gate_refs}
        inside = np.asarray(gate.apply(pd.DataFrame(refs)), dtype=bool)
    else:
        columns = {}
        for dim in gate.dimensions:
            values = events[:, names.index(dim.id)]
            if dim.transformation_ref is not None:
                xform = strategy.get_transform(dim.transformation_ref)
                values = xform.apply(values.reshape(-1, 1)).ravel()
            columns[dim.id] = values
        inside = np.asarray(gate.apply(pd.DataFrame(columns)), dtype=bool)
    if path[-1] != "root":
        inside = inside & _membership(strategy, path[-1], path[:-1], events, names, cache)
    cache[key] = inside
    return inside
