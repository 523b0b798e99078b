"""Monocyte gating: compensation, debris/doublet/monocyte gates, lab templates, PE statistic.

Public API (imported lazily, so reading a configuration does not load the gate's numerics)::

    compensate(events, channel_names, spillover_channels, spillover_matrix) -> np.ndarray
    spillover_problems(spillover_channels, spillover_matrix) -> list[str]
    gate_monocytes(events, channel_names, roles, config=GatingQCConfig(), template=None,
                   seed=0, *, time_channel=None) -> MonocyteGateResult
    check_stability(time, pe, cd14, monocytes, config=StabilityConfig(), time_channel=None)
        -> Stability
    write_gatingml(result, spillover=None) -> str (GatingML 2.0; final gate id 'monocytes')
    load_template_gate(gatingml_path, gate_name) -> TemplateGate
    apply_template_gate(template, events, channel_names) -> np.ndarray (bool)
    monocyte_pe_statistic(pe_values, statistic='median') -> (value, se_log10)
"""

from science.lazy import exports

_WHERE = {
    "compensate": "gating.compensation", "spillover_problems": "gating.compensation",
    "write_gatingml": "gating.gatingml",
    "CD14DimCheck": "gating.result", "DebrisGeometry": "gating.result", "DoubletGeometry": "gating.result",
    "GatePolygon": "gating.result", "GatingQCConfig": "gating.result", "MonocyteGateResult": "gating.result",
    "MonocyteGeometry": "gating.result", "Population": "gating.result", "TemplateGeometry": "gating.result",
    "Stability": "gating.stability", "StabilityConfig": "gating.stability", "check_stability": "gating.stability",
    "monocyte_pe_statistic": "gating.statistic",
    "gate_monocytes": "gating.strategy",
    "TemplateGate": "gating.template", "apply_template_gate": "gating.template",
    "load_template_gate": "gating.template",
}
__all__ = sorted(_WHERE)
__getattr__ = exports("gating", _WHERE)
