"""The monocyte gating strategy: debris -> singlets -> monocytes, then the acquisition's
stability along Time, with counts and QC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from science.qc import QC
from gating.monocytes import monocyte_gate, settle
from gating.result import GatingQCConfig, MonocyteGateResult
from gating.scatter import debris_gate, doublet_gate
from gating.stability import check_stability

if TYPE_CHECKING:
    from gating.fitted import MonocyteGate
    from gating.template import TemplateGate

MAX_NON_FINITE = 0.001          # a channel with more non-finite values than this does not decode


def _count_findings(n: int, config: GatingQCConfig) -> QC:
    if n < config.monocytes_fail_below:
        return QC("fail", (f"{n:,} monocytes (fewer than {config.monocytes_fail_below:,})",))
    if n < config.monocytes_review_below:
        return QC("review", (f"{n:,} monocytes (fewer than {config.monocytes_review_below:,})",))
    return QC()


def _failed(n: int, *reasons: str) -> MonocyteGateResult:
    """No monocytes: the events do not allow gating (scatter missing or unusable)."""
    empty = np.zeros(n, dtype=bool)
    return MonocyteGateResult(
        masks={"stable": np.ones(n, dtype=bool), "cells": empty, "singlets": empty, "monocytes": empty},
        counts={"events": n, "stable": n, "cells": 0, "singlets": 0, "monocytes": 0}, debris=None,
        doublets=None, gate=None, separation=None, qc=QC("fail", reasons))


def time_channel_of(channel_names: Sequence[str]) -> str | None:
    """The acquisition clock: the channel named 'Time' (any case), as FCS 3.1 names it."""
    return next((n for n in channel_names if n.strip().lower() == "time"), None)


def gate_monocytes(events: np.ndarray, channel_names: Sequence[str],
                   roles: Mapping[str, str | None], config: GatingQCConfig = GatingQCConfig(),
                   template: TemplateGate | None = None, seed: int = 0, *,
                   time_channel: str | None = None, gate: MonocyteGate | None = None) -> MonocyteGateResult:
    """Gate the monocytes of one patient tube.

    ``events``: linear, compensated values (rows = events in acquisition order, columns in
    ``channel_names`` order). ``roles``: channel names for ``fsc_a``, ``fsc_h``, ``ssc_a``,
    ``ssc_h``, ``cd14`` and ``pe`` (None when absent, as in ``Acquisition.roles.as_dict()``).
    ``time_channel``: the clock (default: the channel named Time; without one the stability
    check runs along the event order). A ``template`` (GatingML) or a fitted ``gate``
    (:class:`gating.fitted.MonocyteGate`: a stored or corrected gate, applied without refitting)
    replaces the automatic monocyte gate (debris and doublet gates and the stability check still
    apply). HLA-DR (PE) never moves a
    gate: it is read for the CD14-dim check and the stability of the signal.
    """
    names = list(channel_names)

    def column(role: str) -> np.ndarray:
        return events[:, names.index(roles[role])]

    if not roles.get("cd14") or roles["cd14"] not in names:
        raise ValueError("no cd14 channel: cannot gate monocytes (the wrong panel)")
    fsc_role = "fsc_a" if roles.get("fsc_a") in names else "fsc_h"
    ssc_role = "ssc_a" if roles.get("ssc_a") in names else "ssc_h"
    for role in (fsc_role, ssc_role):
        if roles.get(role) not in names:
            return _failed(events.shape[0], f"no {role[:3].upper()} channel: cannot find the cells")
    pe = column("pe") if roles.get("pe") in names else None
    for role in (fsc_role, ssc_role, "cd14", "pe"):
        if roles.get(role) in names:
            bad = float(np.mean(~np.isfinite(column(role))))
            if bad > MAX_NON_FINITE:
                return _failed(events.shape[0], f"{bad:.0%} of the {roles[role]} values are not finite "
                                                "numbers: the channel's scale keywords ($PnE, $PnR, $PnG) "
                                                "or data type do not decode it")
    time_name = time_channel or time_channel_of(names)
    notes: list[str] = []
    debris = debris_gate(column(fsc_role), roles[fsc_role], config, seed)
    if debris.geometry is None:
        return _failed(events.shape[0], *debris.qc.reasons)
    notes += debris.notes
    if roles.get("fsc_a") in names and roles.get("fsc_h") in names:
        doublets = doublet_gate(column("fsc_a"), column("fsc_h"), debris.mask, roles["fsc_a"],
                                roles["fsc_h"], config, seed)
        if doublets.geometry is None:
            return _failed(events.shape[0], *doublets.qc.reasons)
        singlets, doublet_geometry, doublet_qc = doublets.mask, doublets.geometry, doublets.qc
    else:
        singlets, doublet_geometry, doublet_qc = debris.mask, None, QC()
        notes.append("no FSC area and height pair: doublets not excluded")
    time = events[:, names.index(time_name)] if time_name in names else None
    automatic = template is None and gate is None
    if gate is not None:
        candidates = gate.apply(events, names) & singlets
    elif template is None:
        found = monocyte_gate(column("cd14"), column(ssc_role), singlets, roles["cd14"], roles[ssc_role],
                              config, seed)
        candidates = found.bright
    else:
        from gating.template import apply_template_gate  # flowkit only when a template is used
        candidates = apply_template_gate(template, events, names) & singlets
    stability = check_stability(time, pe, column("cd14"), candidates, config.stability, time_name)
    stable = stability.mask(time if stability.axis == "time" else np.arange(events.shape[0], dtype=float))
    if automatic:
        step = settle(found, column("cd14"), pe, stable, config)
        monocytes, geometry, gate_qc = step.mask, step.geometry, step.qc
        separation, alternatives, cd14_dim = step.separation, dict(step.alternatives), step.cd14_dim
        core_shift = step.core_shift
        notes += step.notes
    else:
        monocytes = candidates & stable
        geometry = gate.geometry if gate is not None else template.geometry()  # type: ignore[union-attr]
        gate_qc, separation, alternatives = QC(), None, {}
        cd14_dim = core_shift = None
    notes += [f for f in stability.findings if stability.status == "pass"]
    stability_qc = QC(stability.status, stability.findings if stability.status != "pass" else ())
    masks = {"stable": stable, "cells": debris.mask & stable, "singlets": singlets & stable,
             "monocytes": monocytes}
    counts = {"events": int(events.shape[0]), "stable": int(stable.sum()),
              "cells": int(masks["cells"].sum()), "singlets": int(masks["singlets"].sum()),
              "monocytes": int(masks["monocytes"].sum())}
    qc = (debris.qc.merged(doublet_qc).merged(gate_qc).merged(stability_qc)
          .merged(_count_findings(counts["monocytes"], config)))
    return MonocyteGateResult(
        masks=masks, counts=counts, debris=debris.geometry, doublets=doublet_geometry,
        gate=geometry, separation=separation, qc=qc, notes=tuple(notes),
        alternatives=alternatives, cd14_dim=cd14_dim, core_shift=core_shift, stability=stability)
