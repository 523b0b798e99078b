"""The tube's gates as a GatingML 2.0 document, so FlowKit or FlowJo reproduce the monocytes.

GatingML 2.0 (Spidlen et al. 2015, Cytometry A 87:683; ISAC Gating-ML 2.0 specification):
gates refer to FCS dimensions by $PnN, with a compensation (``spectrumMatrix``, the file's own
spillover written out, or ``uncompensated``) and a transformation. The hierarchy is
``stable`` (Time intervals the stability check kept; omitted when all of them were) ->
``cells`` (FSC above the debris threshold) -> ``singlets`` (the FSC area/height band, a wedge
through the origin) -> ``monocytes`` (the polygon in asinh CD14 vs asinh SSC, or a Boolean OR
of the CD14-bright and CD14-dim polygons).

The asinh(x / c) of the gate is GatingML's ``fasinh`` with A = 0:
f(x) = asinh(x sinh(M ln 10) / T) / (M ln 10), so T = c sinh(M ln 10) gives
f(x) = asinh(x / c) / (M ln 10) and the vertices are written divided by M ln 10.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

import numpy as np

from gating.result import GatePolygon, MonocyteGateResult, MonocyteGeometry

GATING = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
TRANSFORMS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
DATATYPE = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
ASINH_M = 5.0                       # decades of the fasinh scale (any M > 0 gives the same gate)
SPILLOVER_ID = "spillover"
_FAR = 1e12                         # the singlet wedge's far edge (linear FSC units)


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _num(value: float) -> str:
    return repr(float(value))


def _dimension(gate: ET.Element, channel: str, compensation: str, transform: str | None = None,
               low: float | None = None, high: float | None = None) -> None:
    dim = ET.SubElement(gate, _q(GATING, "dimension"))
    dim.set(_q(GATING, "compensation-ref"), compensation)
    if transform is not None:
        dim.set(_q(GATING, "transformation-ref"), transform)
    if low is not None:
        dim.set(_q(GATING, "min"), _num(low))
    if high is not None:
        dim.set(_q(GATING, "max"), _num(high))
    ET.SubElement(dim, _q(DATATYPE, "fcs-dimension")).set(_q(DATATYPE, "name"), channel)


def _gate(root: ET.Element, kind: str, gate_id: str, parent: str | None) -> ET.Element:
    gate = ET.SubElement(root, _q(GATING, kind))
    gate.set(_q(GATING, "id"), gate_id)
    if parent is not None:
        gate.set(_q(GATING, "parent_id"), parent)
    return gate


def _vertices(gate: ET.Element, vertices: np.ndarray) -> None:
    for vx, vy in vertices:
        vertex = ET.SubElement(gate, _q(GATING, "vertex"))
        for value in (vx, vy):
            ET.SubElement(vertex, _q(GATING, "coordinate")).set(_q(DATATYPE, "value"), _num(value))


def _or(root: ET.Element, gate_id: str, parent: str | None, refs: Sequence[str]) -> None:
    either = ET.SubElement(_gate(root, "BooleanGate", gate_id, parent), _q(GATING, "or"))
    for ref in refs:
        ET.SubElement(either, _q(GATING, "gateReference")).set(_q(GATING, "ref"), ref)


def _asinh(root: ET.Element, transform_id: str, cofactor: float) -> None:
    t = ET.SubElement(root, _q(TRANSFORMS, "transformation"))
    t.set(_q(TRANSFORMS, "id"), transform_id)
    f = ET.SubElement(t, _q(TRANSFORMS, "fasinh"))
    f.set(_q(TRANSFORMS, "T"), _num(cofactor * np.sinh(ASINH_M * np.log(10.0))))
    f.set(_q(TRANSFORMS, "M"), _num(ASINH_M))
    f.set(_q(TRANSFORMS, "A"), "0.0")


def _spillover(root: ET.Element, channels: Sequence[str], matrix: np.ndarray) -> None:
    m = ET.SubElement(root, _q(TRANSFORMS, "spectrumMatrix"))
    m.set(_q(TRANSFORMS, "id"), SPILLOVER_ID)
    for part in ("fluorochromes", "detectors"):
        holder = ET.SubElement(m, _q(TRANSFORMS, part))
        for name in channels:
            ET.SubElement(holder, _q(DATATYPE, "fcs-dimension")).set(_q(DATATYPE, "name"), name)
    for row in np.asarray(matrix, dtype=float):
        spectrum = ET.SubElement(m, _q(TRANSFORMS, "spectrum"))
        for value in row:
            ET.SubElement(spectrum, _q(TRANSFORMS, "coefficient")).set(_q(TRANSFORMS, "value"), _num(value))


def write_gatingml(result: MonocyteGateResult,
                   spillover: tuple[Sequence[str], np.ndarray] | None = None) -> str:
    """The gates of ``result`` as a GatingML 2.0 document (UTF-8 text); the final gate's id is
    ``monocytes``. ``spillover``: the (channels, matrix) the events were compensated with (the
    file's $SPILLOVER), written as the document's spectrumMatrix; None for data that need none.

    Raises ``ValueError`` when the tube has no automatic monocyte gate (none found, or a lab
    template was used: that template is already the portable gate).
    """
    gate = result.gate
    if not isinstance(gate, MonocyteGeometry):
        raise ValueError("no automatic monocyte gate to write (none found, or a lab template was used)")
    ET.register_namespace("gating", GATING)
    ET.register_namespace("transforms", TRANSFORMS)
    ET.register_namespace("data-type", DATATYPE)
    root = ET.Element(_q(GATING, "Gating-ML"))
    compensated = set(spillover[0]) if spillover is not None else set()
    if spillover is not None:
        _spillover(root, spillover[0], spillover[1])
    _asinh(root, "asinh_cd14", gate.cd14_cofactor)
    _asinh(root, "asinh_ssc", gate.ssc_cofactor)

    parent = None
    stability = result.stability
    if stability is not None and stability.excluded_share > 0:
        if stability.axis != "time" or stability.channel is None:
            root.append(ET.Comment(" events excluded along the event order (no Time channel) cannot be "
                                   "expressed here: counts include them "))
        else:
            ids = []
            for k, (start, end) in enumerate(stability.kept):
                ids.append("stable" if len(stability.kept) == 1 else f"stable_{k + 1}")
                _dimension(_gate(root, "RectangleGate", ids[-1], None), stability.channel, "uncompensated",
                           low=start if np.isfinite(start) else None, high=end if np.isfinite(end) else None)
            if len(ids) > 1:
                _or(root, "stable", None, ids)
            parent = "stable"

    debris = result.debris
    cells = _gate(root, "RectangleGate", "cells", parent)
    _dimension(cells, debris.channel, "uncompensated", low=float(np.nextafter(debris.threshold, np.inf)))
    parent = "cells"
    if result.doublets is not None:
        d = result.doublets
        singlets = _gate(root, "PolygonGate", "singlets", parent)
        _dimension(singlets, d.height_channel, "uncompensated")
        _dimension(singlets, d.area_channel, "uncompensated")
        _vertices(singlets, np.array([[0.0, 0.0], [_FAR, d.ratio_low * _FAR], [_FAR, d.ratio_high * _FAR]]))
        parent = "singlets"

    def polygon(p: GatePolygon, gate_id: str) -> None:
        g = _gate(root, "PolygonGate", gate_id, parent)
        cd14_comp = SPILLOVER_ID if gate.cd14_channel in compensated else "uncompensated"
        ssc_comp = SPILLOVER_ID if gate.ssc_channel in compensated else "uncompensated"
        _dimension(g, gate.cd14_channel, cd14_comp, "asinh_cd14")
        _dimension(g, gate.ssc_channel, ssc_comp, "asinh_ssc")
        _vertices(g, p.as_array() / (ASINH_M * np.log(10.0)))

    if len(gate.polygons) == 1:
        polygon(gate.polygons[0], "monocytes")
    else:
        for p in gate.polygons:
            polygon(p, p.name)
        _or(root, "monocytes", parent, [p.name for p in gate.polygons])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
