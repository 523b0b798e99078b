"""From a patient tube and its bead calibration to a QC'd mHLA-DR value in AB/C.

Composition of the computational core (``gating`` for compensation and gates,
``calibration`` for the statistic and the curve) with what only the pipeline knows: the
acquisition's metadata, the pairing rules between beads and sample, the ICU day, and the
reporting categories (DESIGN.md: >= 15,000 normal; < 8,000 immunosuppression, the trial's
cut-off; < 5,000 severe immunoparalysis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from calibration.result import Calibration
from calibration.scale import scale_findings
from gating.positivity import Positivity, hla_dr_positive, negative_reference
from gating.result import MonocyteGateResult
from gating.statistic import monocyte_pe_statistic
from pipeline import __version__
from pipeline import formatting as fmt
from pipeline.acquisition import Acquisition, Header, same_setting
from pipeline.channel_scale import channel_scale
from pipeline.compensation_state import compensation_state, missing_compensation, pairing_finding
from pipeline.config import Settings
from pipeline.eligibility import admission_notes, result_rules
from pipeline.errors import WRONG_PANEL, InputError
from pipeline.preanalytics import SampleLog, check
from science.qc import QC
from science.statistics import population_statistic
from science.uncertainty import log_sd, p_below

if TYPE_CHECKING:
    from gating.fitted import MonocyteGate
    from gating.template import TemplateGate

CATEGORIES = ((15000.0, "normal"), (8000.0, "reduced"), (5000.0, "immunosuppressed"), (0.0, "severe"))


def category(abc: float | None) -> str | None:
    """Reporting category of an AB/C value (DESIGN.md reference values)."""
    if abc is None or not math.isfinite(abc):
        return None
    return next(name for floor, name in CATEGORIES if abc >= floor)


def require_panel(acq: Header) -> None:
    """A tube without CD14 (PerCP-Cy5.5) or HLA-DR (PE) is the wrong panel, not a sample to guess at."""
    if acq.roles.cd14 is None:
        raise InputError(acq.path, WRONG_PANEL,
                         "wrong panel: no CD14 (PerCP-Cy5.5) channel in this tube")
    if acq.roles.pe is None:
        raise InputError(acq.path, WRONG_PANEL, "wrong panel: no HLA-DR (PE) channel in this tube")


def pairing_findings(acq: Acquisition, cal: Calibration) -> list[tuple[str, str]]:
    """Beads and sample must share instrument, PE channel, voltage, gain and scale (cytoflow's
    rule; DESIGN.md: the same scale)."""
    key = cal.key
    pe = acq.channel(acq.roles.pe) if acq.roles.pe else None
    findings: list[tuple[str, str]] = []
    if (key.instrument or "") != (acq.instrument or "") or (key.serial or "") != (acq.serial or ""):
        findings.append(("fail", f"beads acquired on {key.instrument} {key.serial or ''}".rstrip()
                         + f", sample on {acq.instrument} {acq.serial or ''}".rstrip()))
    if pe is None or key.channel != pe.name:
        findings.append(("fail", f"beads calibrated on channel {key.channel}, sample PE is "
                         f"{pe.name if pe else 'absent'}"))
    elif not same_setting(key.voltage, pe.voltage):
        findings.append(("fail", f"PE voltage differs: beads {_fmt_num(key.voltage)} V, "
                         f"sample {_fmt_num(pe.voltage)} V"))
    elif not same_setting(key.gain, pe.gain):
        findings.append(("fail", f"PE gain differs: beads {_fmt_num(key.gain)}, sample {_fmt_num(pe.gain)}"))
    if pe is not None and key.scale is not None:
        findings += scale_findings(key.scale, channel_scale(acq, pe.name))
    if (differs := pairing_finding(key.compensation, compensation_state(acq))) is not None:
        findings.append(differs)
    if key.acquired and acq.acquired and key.acquired.date() != acq.acquired.date():
        findings.append(("review", f"beads acquired on {key.acquired.date().isoformat()}, sample on "
                         f"{acq.acquired.date().isoformat()} (the lab pairs tubes of the same day)"))
    return findings


def out_of_range(abc: float, f_cells: float, cal: Calibration) -> str:
    """An AB/C outside the beads, said in the technician's units (the nearest bead's value)."""
    values = [v for v in cal.bead_values if v > 0]
    about = f"{round(abc, 1 - int(math.floor(math.log10(abc)))):,.0f}"
    assert cal.curve is not None
    if f_cells > cal.curve.f_max and values:
        return (f"AB/C about {about}, above the highest bead ({fmt.number(max(values))} PE/bead): "
                "extrapolated beyond the bead curve")
    low = f" ({fmt.number(min(values))} PE/bead)" if values else ""
    return f"AB/C about {about}, below the lowest bead{low}: extrapolated beyond the bead curve"


def positivity(acq: Acquisition, gates: MonocyteGateResult) -> Positivity:
    """% HLA-DR+ monocytes against the tube's own HLA-DR-negative granulocytes (:mod:`gating.positivity`)."""
    roles = acq.roles
    if roles.ssc_a is None and roles.ssc_h is None or "singlets" not in gates.masks:
        return Positivity(None, None, 0)
    col = acq.column
    ssc = col(roles.ssc_a or roles.ssc_h)  # type: ignore[arg-type]
    ref = negative_reference(gates.masks["singlets"], gates.monocytes, ssc, col(roles.cd14))  # type: ignore[arg-type]
    pe = col(roles.pe)  # type: ignore[arg-type]
    return hla_dr_positive(pe[gates.monocytes], pe[ref])


def _fmt_num(x: float | None) -> str:
    return "unknown" if x is None else f"{x:g}"


@dataclass(frozen=True)
class Measurement:
    """One patient tube's mHLA-DR result with its full provenance: plain values only, so the
    results store keeps it whole and gives it back as it was (``gates`` is the gating record,
    ``calibration`` the bead calibration it was converted with)."""

    file: str
    sha256: str
    patient_id: str | None
    collection_date: date | None
    icu_day: int | None
    in_window: bool | None
    monocytes: int
    statistic: str
    pe_statistic: float | None
    abc: float | None
    abc_interval: tuple[float, float] | None
    below_threshold: bool | None
    category: str | None
    qc: QC
    gates: dict[str, Any]
    calibration: Calibration | None
    analysed_at: datetime
    software_version: str = __version__
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def p_below_threshold(self) -> float | None:
        """P(true AB/C < cut-off) from the interval and the inter-assay CV (kept in ``gates['call']``)."""
        return (self.gates.get("call") or {}).get("p_below_threshold")

    @property
    def near_cutoff(self) -> bool | None:
        return (self.gates.get("call") or {}).get("near_cutoff")

    @property
    def hla_dr_positive_percent(self) -> float | None:
        return (self.gates.get("hla_dr_positive") or {}).get("percent")

    @property
    def preanalytics(self) -> dict[str, Any] | None:
        """Draw, acquisition and delay (kept in ``gates['preanalytics']``)."""
        return self.gates.get("preanalytics")


def measurement_document(meas: Measurement, calibration: dict[str, Any]) -> dict[str, Any]:
    """The contract's ``analyze`` document of a measurement (fresh or stored)."""
    return {
        "file": meas.file, "sha256": meas.sha256, "patient_id": meas.patient_id,
        "collection_date": meas.collection_date.isoformat() if meas.collection_date else None,
        "icu_day": meas.icu_day, "in_window": meas.in_window, "monocytes": meas.monocytes,
        "statistic": meas.statistic, "pe_statistic": meas.pe_statistic, "abc": meas.abc,
        "abc_interval": list(meas.abc_interval) if meas.abc_interval else None,
        "below_threshold": None if meas.qc.status == "fail" else meas.below_threshold,
        "category": meas.category,
        "p_below_threshold": None if meas.qc.status == "fail" else meas.p_below_threshold,
        "near_cutoff": None if meas.qc.status == "fail" else meas.near_cutoff,
        "hla_dr_positive_percent": meas.hla_dr_positive_percent, "preanalytics": meas.preanalytics,
        "qc": meas.qc.as_dict(), "calibration": calibration,
        "gates": meas.gates, "notes": list(meas.notes), "analysed_at": meas.analysed_at.isoformat(),
        "software_version": meas.software_version,
    }


def alternative_abcs(gates: MonocyteGateResult, pe: np.ndarray, cal: Calibration) -> dict[str, float]:
    """The AB/C of each alternative monocyte gate (CD14-bright only; with the CD14-dim
    monocytes), when the gate offers both and they differ: what leaving the CD14-dim events out
    (or in) does to the number."""
    masks = gates.alternatives
    if cal.curve is None or len(masks) < 2 or all(np.array_equal(m, gates.monocytes) for m in masks.values()):
        return {}
    out = {}
    for name, mask in masks.items():
        values = pe[mask]
        f = population_statistic(values, cal.statistic) if values.size else 0.0  # type: ignore[arg-type]
        if f > 0:
            out[name] = float(cal.to_abc(f))
    return out if len(out) == len(masks) else {}


def call_near_cutoff(abc: float | None, interval: tuple[float, float] | None,
                     settings: Settings) -> dict[str, Any]:
    """``p_below_threshold`` (P(true AB/C < cut-off): the tube's interval widened by
    ``inter_assay_cv``, :mod:`science.uncertainty`) and ``near_cutoff`` (p inside
    [near_cutoff_p, 1 - near_cutoff_p]). The eligibility rule itself stays abc < threshold."""
    p = p_below(abc, interval, settings.abc_threshold, settings.inter_assay_cv)
    near = None if p is None else bool(settings.near_cutoff_p < p < 1.0 - settings.near_cutoff_p)
    return {"p_below_threshold": None if p is None else round(p, 4), "near_cutoff": near,
            "inter_assay_cv": settings.inter_assay_cv}


def dim_shift_finding(both_ways: dict[str, float], abc: float, interval: tuple[float, float] | None,
                      settings: Settings) -> tuple[str, str] | None:
    """A person is asked only when gating the CD14-dim events the other way would move the
    AB/C by more than its own 95 % uncertainty (interval and inter-assay CV,
    :func:`science.uncertainty.log_sd`), or move it across the cut-off."""
    other = next((v for v in both_ways.values() if not math.isclose(v, abc, rel_tol=1e-9)), None)
    if other is None:
        return None
    shift = other / abc - 1.0
    allowed = math.expm1(1.959964 * log_sd(abc, interval, settings.inter_assay_cv))
    crosses = (other < settings.abc_threshold) != (abc < settings.abc_threshold)
    if abs(math.log1p(shift)) <= math.log1p(allowed) and not crosses:
        return None
    why = ("would move it across the cut-off" if crosses
           else f"more than its own uncertainty ({fmt.percent(allowed, 1)})")
    return ("review", f"CD14-dim monocytes at the monocytes' scatter: gated the other way the AB/C would be "
                      f"{fmt.percent(shift, 1)} off, {why}: check the gate")


def cd14_dim_note(both_ways: dict[str, float]) -> str:
    """How far the CD14-dim monocytes move the AB/C, in words (a relative change only: a note is
    shown where a post-randomization value must not be)."""
    bright, with_dim = both_ways["cd14_bright"], both_ways["with_cd14_dim"]
    return (f"CD14-dim monocytes at the monocytes' scatter: the AB/C with them differs by "
            f"{fmt.percent(with_dim / bright - 1.0, 1)} from the CD14-bright monocytes alone")


def measure(acq: Acquisition, cal: Calibration, settings: Settings, *,
            admission: date | datetime | None = None, template: TemplateGate | None = None,
            now: datetime | None = None, seed: int = 0,
            gate: MonocyteGate | None = None, sample_log: SampleLog = SampleLog()
            ) -> tuple[Measurement, MonocyteGateResult]:
    """Gate the monocytes of ``acq``, convert their PE statistic to AB/C through ``cal``, QC it.

    ``admission`` is the registry's ICU admission (None: the ``ICU ADMISSION DATE`` keyword);
    ``sample_log`` what the sample log says of the draw (pre-analytics, :mod:`pipeline.preanalytics`).
    ``gate``: a stored or corrected monocyte gate applied as it is (no refit; a gate correction).
    Returns the measurement and the gating result it rests on (masks included, for figures).
    Raises :class:`InputError` (``wrong_panel``) for a tube without CD14 or HLA-DR.
    """
    from gating.strategy import gate_monocytes   # the gate's numerics load only when a tube is measured

    require_panel(acq)
    if not acq.compensated:
        raise ValueError(f"{acq.path}: events must be compensated before measuring (read_fcs does it)")
    names = [ch.name for ch in acq.channels]
    events = acq.events
    gates = gate_monocytes(events, names, acq.roles.as_dict(), config=settings.gating_qc(), template=template,
                           seed=seed, gate=gate)
    pe = events[gates.monocytes, names.index(acq.roles.pe)]  # type: ignore[arg-type]
    statistic = cal.statistic
    findings: list[tuple[str, str]] = pairing_findings(acq, cal)
    if (uncompensated := missing_compensation(acq)) is not None:
        findings.append(uncompensated)
    pre = check(sample_log, acq.collected_at, acq.acquired, max_hours=settings.max_draw_to_acquisition_hours,
                unknown_is_review=settings.unknown_draw_time_review)
    findings += pre.findings
    f_cells: float | None = None
    abc: float | None = None
    interval: tuple[float, float] | None = None
    if pe.size == 0:
        findings.append(("fail", "no monocytes found: no PE statistic"))
    else:
        f_cells, se = monocyte_pe_statistic(pe, statistic)
        if cal.curve is None:
            findings.append(("fail", "the bead calibration has no standard curve"))
        elif f_cells <= 0:
            findings.append(("fail", f"monocyte PE {statistic} is {f_cells:.3g} (not positive): no AB/C"))
        else:
            abc = float(cal.to_abc(f_cells))
            try:
                interval = cal.abc_interval(f_cells, f_se_log=0.0 if math.isnan(se) else se)
            except ValueError as exc:
                findings.append(("review", f"no AB/C interval: {exc}"))
            if not cal.in_range(f_cells):
                findings.append(("review", out_of_range(abc, f_cells, cal)))
    if cal.qc.status != "pass":
        findings += [(cal.qc.status, f"calibration: {r}") for r in cal.qc.reasons] \
            or [(cal.qc.status, f"calibration QC is {cal.qc.status}")]
    qc = QC.from_findings(findings).merged(gates.qc)
    record = gates.as_dict()
    notes = list(gates.notes) + list(pre.notes) + admission_notes(admission, acq.icu_admission, acq.collection_date)
    both_ways = alternative_abcs(gates, events[:, names.index(acq.roles.pe)], cal)  # type: ignore[arg-type]
    if both_ways:
        record["abc_alternatives"] = both_ways
        notes.append(cd14_dim_note(both_ways))
        if abc is not None and (held := dim_shift_finding(both_ways, abc, interval, settings)) is not None:
            qc = qc.merged(QC.from_findings([held]))
    record["call"] = call_near_cutoff(abc, interval, settings)
    record["preanalytics"] = pre.as_dict()
    record["compensation"] = compensation_state(acq)
    record["hla_dr_positive"] = positivity(acq, gates).as_dict()
    facts = result_rules(admission or acq.icu_admission, acq.collection_date, abc, qc.status, settings.rules())
    measurement = Measurement(
        file=acq.path, sha256=acq.sha256, patient_id=acq.patient_id,
        collection_date=acq.collection_date,
        icu_day=facts.icu_day, in_window=facts.in_window, monocytes=int(gates.counts["monocytes"]),
        statistic=statistic, pe_statistic=f_cells, abc=abc, abc_interval=interval,
        below_threshold=facts.below_threshold,
        category=category(abc), qc=qc, gates=record, calibration=cal,
        analysed_at=now or datetime.now().astimezone(), notes=tuple(notes))
    return measurement, gates
