"""Lab GatingML 2.0 templates: compliance against FlowKit's Gating-ML 2.0 reference results
(their use in place of the automatic gate is tested in test_gating.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gating.template import apply_template_gate, load_template_gate

# (GatingML file, gate id, truth file): polygon, ellipse, range, rectangle, transformed range
# and rectangle, boolean and parent-child gates from the Gating-ML 2.0 compliance set.
REFERENCE = [
    ("gml_poly1_gate.xml", "Polygon1", "Polygon1"),
    ("gml_poly3ns_gate.xml", "Polygon3NS", "Polygon3NS"),
    ("gml_ellipse1_gate.xml", "Ellipse1", "Ellipse1"),
    ("gml_ellipsoid3d_gate.xml", "Ellipsoid3D", "Ellipsoid3D"),
    ("gml_range_gate.xml", "Range1", "Range1"),
    ("gml_rect1_gate.xml", "Rectangle1", "Rectangle1"),
    ("gml_transform_logicle_range4_gate.xml", "ScaleRange4", "ScaleRange4"),
    ("gml_transform_asinh_range1_gate.xml", "ScaleRange1", "ScaleRange1"),
    ("gml_transform_log_range6_gate.xml", "ScaleRange6", "ScaleRange6"),
    ("gml_boolean_and1_gate.xml", "And1", "And1"),
    ("gml_boolean_or1_gate.xml", "Or1", "Or1"),
    ("gml_parent_poly1_boolean_and2_gate.xml", "ParAnd2", "ParAnd2"),
]


@pytest.fixture(scope="module")
def reference_events(real_fcs):
    import flowkit

    sample = flowkit.Sample(str(real_fcs / "FlowKit" / "gate_ref" / "data1.fcs"))
    return sample.get_events(source="raw"), list(sample.pnn_labels)


@pytest.mark.parametrize("xml, gate, truth", REFERENCE)
def test_reference_membership(real_fcs, reference_events, xml: str, gate: str, truth: str) -> None:
    events, names = reference_events
    template = load_template_gate(real_fcs / "FlowKit" / "gate_ref" / "gml" / xml, gate)
    expected = np.loadtxt(real_fcs / "FlowKit" / "gate_ref" / "truth" / f"Results_{truth}.txt")
    inside = apply_template_gate(template, events, names)
    assert inside.shape == expected.shape
    assert np.array_equal(inside, expected.astype(bool))


def test_unknown_gate_and_own_matrix_refused(real_fcs) -> None:
    gml = real_fcs / "FlowKit" / "gate_ref" / "gml"
    with pytest.raises(ValueError, match="found 0 times"):
        load_template_gate(gml / "gml_poly1_gate.xml", "Monocytes")
    with pytest.raises(ValueError, match="compensation"):
        load_template_gate(gml / "gml_matrix_transform_logicle_rect1_gate.xml", "ScaleRect1")


def test_missing_channel_refused(real_fcs, reference_events) -> None:
    events, names = reference_events
    template = load_template_gate(real_fcs / "FlowKit" / "gate_ref" / "gml" / "gml_poly1_gate.xml",
                                  "Polygon1")
    keep = [i for i, n in enumerate(names) if n != template.channels[0]]
    with pytest.raises(ValueError, match="absent"):
        apply_template_gate(template, events[:, keep], [names[i] for i in keep])
