"""The monocyte gating strategy: debris -> singlets -> monocytes, with counts and QC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from science.qc import QC
from gating.monocytes import monocyte_gate
from gating.result import GatingQCConfig, MonocyteGateResult
from gating.scatter import debris_gate, doublet_gate

if TYPE_CHECKING:
    from gating.template import TemplateGate


def _count_findings(n: int, config: GatingQCConfig) -> QC:
    if n < config.monocytes_fail_below:
        return QC("fail", (f"{n} monocytes (fewer than {config.monocytes_fail_below})",))
    if n < config.monocytes_review_below:
        return QC("review", (f"{n} monocytes (fewer than {config.monocytes_review_below})",))
    return QC()


def gate_monocytes(events: np.ndarray, channel_names: Sequence[str],
                   roles: Mapping[str, str | None], config: GatingQCConfig = GatingQCConfig(),
                   template: TemplateGate | None = None, seed: int = 0) -> MonocyteGateResult:
    """Gate the monocytes of one patient tube.

    ``events``: linear, compensated values (rows = events, columns in ``channel_names`` order).
    ``roles``: channel names for ``fsc_a``, ``fsc_h``, ``ssc_a``, ``ssc_h`` and ``cd14`` (None
    when absent, as in ``Acquisition.roles.as_dict()``). A ``template`` replaces the automatic
    monocyte gate (debris and doublet gates still apply). HLA-DR (PE) is never used.
    """
    names = list(channel_names)

    def column(role: str) -> np.ndarray:
        return events[:, names.index(roles[role])]

    fsc_role = "fsc_a" if roles.get("fsc_a") else "fsc_h"
    ssc_role = "ssc_a" if roles.get("ssc_a") else "ssc_h"
    for role in (fsc_role, ssc_role, "cd14"):
        if not roles.get(role) or roles[role] not in names:
            raise ValueError(f"no {role} channel: cannot gate monocytes")
    notes: list[str] = []
    debris = debris_gate(column(fsc_role), roles[fsc_role], config, seed)
    notes += debris.notes
    if roles.get("fsc_a") and roles.get("fsc_h"):
        doublets = doublet_gate(column("fsc_a"), column("fsc_h"), debris.mask, roles["fsc_a"],
                                roles["fsc_h"], config, seed)
        singlets, doublet_geometry, doublet_qc = doublets.mask, doublets.geometry, doublets.qc
    else:
        singlets, doublet_geometry, doublet_qc = debris.mask, None, QC()
        notes.append("no FSC area and height pair: doublets not excluded")
    if template is None:
        step = monocyte_gate(column("cd14"), column(ssc_role), singlets, roles["cd14"],
                             roles[ssc_role], config, seed)
        monocytes, geometry, gate_qc, separation = step.mask, step.geometry, step.qc, step.separation
    else:
        from gating.template import apply_template_gate  # flowkit only when a template is used
        monocytes = apply_template_gate(template, events, names) & singlets
        geometry, gate_qc, separation = template.geometry(), QC(), None
    counts = {"events": int(events.shape[0]), "cells": int(debris.mask.sum()),
              "singlets": int(singlets.sum()), "monocytes": int(monocytes.sum())}
    qc = debris.qc.merged(doublet_qc).merged(gate_qc).merged(
        _count_findings(counts["monocytes"], config))
    return MonocyteGateResult(
        masks={"cells": debris.mask, "singlets": singlets, "monocytes": monocytes},
        counts=counts, debris=debris.geometry, doublets=doublet_geometry, gate=geometry,
        separation=separation, qc=qc, notes=tuple(notes))
