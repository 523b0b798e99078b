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

from science.qc import QC
from calibration.result import Calibration
from gating.result import GatingQCConfig, MonocyteGateResult
from gating.statistic import monocyte_pe_statistic
from gating.strategy import gate_monocytes
from pipeline import __version__
from pipeline.acquisition import Acquisition, same_setting
from pipeline.config import Settings
from pipeline.eligibility import Rules, below_threshold, in_window
from pipeline.eligibility import icu_day as icu_day_of
from pipeline.errors import WRONG_PANEL, InputError
from pipeline.store.records import MeasurementInput

if TYPE_CHECKING:
    from gating.template import TemplateGate

CATEGORIES = ((15000.0, "normal"), (8000.0, "reduced"), (5000.0, "immunosuppressed"), (0.0, "severe"))


def category(abc: float | None) -> str | None:
    """Reporting category of an AB/C value (DESIGN.md reference values)."""
    if abc is None or not math.isfinite(abc):
        return None
    return next(name for floor, name in CATEGORIES if abc >= floor)


def load_template(settings: Settings) -> TemplateGate | None:
    """The lab's GatingML monocyte gate named in the settings, if any (flowkit is imported only then)."""
    if not settings.gating_template:
        return None
    from gating.template import load_template_gate
    return load_template_gate(settings.gating_template, settings.gating_template_gate)


def require_panel(acq: Acquisition) -> None:
    """A tube without CD14 (PerCP-Cy5.5) or HLA-DR (PE) is the wrong panel, not a sample to guess at."""
    if acq.roles.cd14 is None:
        raise InputError(acq.path, WRONG_PANEL,
                         "wrong panel: no CD14 (PerCP-Cy5.5) channel in this tube")
    if acq.roles.pe is None:
        raise InputError(acq.path, WRONG_PANEL, "wrong panel: no HLA-DR (PE) channel in this tube")


def pairing_findings(acq: Acquisition, cal: Calibration) -> list[tuple[str, str]]:
    """Beads and sample must share instrument, PE channel, voltage and gain (cytoflow's rule)."""
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
    if key.acquired and acq.acquired and key.acquired.date() != acq.acquired.date():
        findings.append(("review", f"beads acquired on {key.acquired.date().isoformat()}, sample on "
                         f"{acq.acquired.date().isoformat()} (the lab pairs tubes of the same day)"))
    return findings


def _fmt_num(x: float | None) -> str:
    return "unknown" if x is None else f"{x:g}"


@dataclass(frozen=True)
class Measurement:
    """One patient tube's mHLA-DR result, with its full provenance."""

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
    gating: MonocyteGateResult
    calibration: Calibration
    analysed_at: datetime
    software_version: str = __version__
    notes: tuple[str, ...] = field(default_factory=tuple)


def measurement_input(m: Measurement, calibration_id: int | None) -> MeasurementInput:
    """The record the results store keeps of a measurement (provenance included)."""
    return MeasurementInput(
        file_sha256=m.sha256, patient_id=m.patient_id or "", collection_date=m.collection_date or date.min,
        icu_day=m.icu_day, in_window=m.in_window, monocytes=m.monocytes, statistic=m.statistic,
        pe_statistic=m.pe_statistic, abc=m.abc,
        abc_low=m.abc_interval[0] if m.abc_interval else None,
        abc_high=m.abc_interval[1] if m.abc_interval else None,
        below_threshold=m.below_threshold, category=m.category, qc=m.qc, calibration_id=calibration_id,
        gates={**m.gating.as_dict(), "notes": list(m.notes), "analysed_at": m.analysed_at.isoformat(),
               "calibration_file_sha256": m.calibration.key.sha256},
        software_version=m.software_version)


def measurement_fields(meas: MeasurementInput, file: str, calibration: dict[str, Any]) -> dict[str, Any]:
    """The contract's ``analyze`` document of a measurement (fresh or stored)."""
    interval = [meas.abc_low, meas.abc_high] if meas.abc_low is not None and meas.abc_high is not None else None
    return {
        "file": file, "sha256": meas.file_sha256, "patient_id": meas.patient_id or None,
        "collection_date": meas.collection_date.isoformat() if meas.collection_date != date.min else None,
        "icu_day": meas.icu_day, "in_window": meas.in_window, "monocytes": meas.monocytes,
        "statistic": meas.statistic, "pe_statistic": meas.pe_statistic, "abc": meas.abc,
        "abc_interval": interval,
        "below_threshold": None if meas.qc.status == "fail" else meas.below_threshold,
        "category": meas.category, "qc": meas.qc.as_dict(), "calibration": calibration,
        "gates": meas.gates, "software_version": meas.software_version,
    }


def measure(acq: Acquisition, cal: Calibration, settings: Settings, *,
            admission: date | datetime | None = None, template: TemplateGate | None = None,
            now: datetime | None = None, seed: int = 0) -> Measurement:
    """Gate the monocytes of ``acq``, convert their PE statistic to AB/C through ``cal``, QC it.

    ``admission`` is the registry's ICU admission (None: the ``ICU ADMISSION DATE`` keyword).
    Raises :class:`InputError` (``wrong_panel``) for a tube without CD14 or HLA-DR.
    """
    require_panel(acq)
    if not acq.compensated:
        raise ValueError(f"{acq.path}: events must be compensated before measuring (read_fcs does it)")
    names = [ch.name for ch in acq.channels]
    events = acq.events
    config = GatingQCConfig(monocytes_review_below=settings.monocytes_review_below,
                            monocytes_fail_below=settings.monocytes_fail_below)
    gates = gate_monocytes(events, names, acq.roles.as_dict(), config=config, template=template, seed=seed)
    pe = events[gates.monocytes, names.index(acq.roles.pe)]  # type: ignore[arg-type]
    statistic = cal.statistic
    findings: list[tuple[str, str]] = pairing_findings(acq, cal)
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
                findings.append(("review", f"monocyte PE {statistic} {f_cells:.4g} lies outside the bead "
                                 f"range {cal.curve.f_min:.4g}..{cal.curve.f_max:.4g}"))
    if cal.qc.status != "pass":
        findings += [(cal.qc.status, f"calibration: {r}") for r in cal.qc.reasons] \
            or [(cal.qc.status, f"calibration QC is {cal.qc.status}")]
    qc = QC.from_findings(findings).merged(gates.qc)
    notes = list(gates.notes)
    when = admission or acq.icu_admission
    if admission is None and acq.icu_admission is not None:
        notes.append("ICU admission taken from the file's keyword (no registry entry)")
    day = icu_day_of(when, acq.collection_date) if when and acq.collection_date else None
    rules = Rules.from_settings(settings)
    return Measurement(
        file=acq.path, sha256=acq.sha256, patient_id=acq.patient_id,
        collection_date=acq.collection_date,
        icu_day=day, in_window=in_window(day, rules), monocytes=int(gates.counts["monocytes"]), statistic=statistic,
        pe_statistic=f_cells, abc=abc, abc_interval=interval,
        below_threshold=below_threshold(abc, qc.status, rules),
        category=category(abc), qc=qc, gating=gates, calibration=cal,
        analysed_at=now or datetime.now().astimezone(), notes=tuple(notes))
