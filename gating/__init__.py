"""Monocyte gating: compensation, debris/doublet/monocyte gates, lab templates, PE statistic.

Public API::

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

from gating.compensation import compensate, spillover_problems
from gating.gatingml import write_gatingml
from gating.result import (CD14DimCheck, DebrisGeometry, DoubletGeometry, GatePolygon,
                           GatingQCConfig, MonocyteGateResult, MonocyteGeometry, Population,
                           TemplateGeometry)
from gating.stability import Stability, StabilityConfig, check_stability
from gating.statistic import monocyte_pe_statistic
from gating.strategy import gate_monocytes

_TEMPLATE_NAMES = ("TemplateGate", "apply_template_gate", "load_template_gate")


def __getattr__(name: str) -> object:
    """Template support imports flowkit (heavy); load it only when a template is used."""
    if name in _TEMPLATE_NAMES:
        from gating import template
        return getattr(template, name)
    raise AttributeError(f"module 'gating' has no attribute {name!r}")

__all__ = [
    "CD14DimCheck", "DebrisGeometry", "DoubletGeometry", "GatePolygon", "GatingQCConfig",
    "MonocyteGateResult", "MonocyteGeometry", "Population", "Stability", "StabilityConfig",
    "TemplateGate", "TemplateGeometry", "apply_template_gate", "check_stability", "compensate",
    "gate_monocytes", "load_template_gate", "monocyte_pe_statistic", "spillover_problems", "write_gatingml",
]
