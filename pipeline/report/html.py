"""Per-tube HTML reports: numbers, QC, provenance and the figures (inline SVG), one
self-contained file per result, written after the result is stored."""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path

from calibration.result import Calibration
from pipeline import formatting as fmt
from pipeline.blinding import WITHHELD, withheld_reasons
from pipeline.measurement import Measurement
from pipeline.report.chart import Chart, to_svg
from pipeline.report.figure_data import SampleFigure
from pipeline.report.figures import calibration_chart, gating_chart, stability_chart

STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1040px;color:#222}
th{text-align:left;padding-right:1em;font-weight:normal;color:#555}td{padding:1px 0}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em}
.pass{color:#070}.review{color:#a60}.fail{color:#b00}.next{background:#fff7e0;padding:.5em}"""


def _row(name: str, value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    return f"<tr><th>{html.escape(name)}</th><td>{html.escape(text)}</td></tr>"


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def calibration_table(cal: Calibration, bead_file: str | None, *, curve_shown: bool = True) -> str:
    """The bead calibration of a result (``curve_shown=False``: without its curve, which with the
    tube's PE statistic gives the value: blinded)."""
    key = cal.key
    curve = cal.curve if curve_shown else None
    return ("<table>" + _row("bead file", Path(bead_file).name if bead_file else None)
            + _row("bead file SHA-256", key.sha256) + _row("lot", key.lot)
            + _row("instrument", f"{key.instrument or '?'} {key.serial or ''}".strip())
            + _row("channel / voltage / gain", f"{key.channel} / {fmt.setting(key.voltage)} V / {fmt.setting(key.gain)}")
            + _row("scale", f"{key.scale.amplifier}, $PnR {key.scale.range:g}, $DATATYPE {key.scale.datatype}"
                   if key.scale and key.scale.range is not None else None)
            + _row("curve", WITHHELD if not curve_shown else
                   f"log10(AB/C) = {curve.slope:.4f} × log10(F) + {curve.intercept:.4f}, R² {curve.r2:.4f}"
                   if curve else None)
            + _row("calibration QC", cal.qc.status) + "</table>")


PAST = {"approve": "approved", "reject": "rejected"}


def decision_section(decisions: tuple[tuple[str, str, str, str, str], ...]) -> str:
    """The technicians' decisions on the record: decision, person, UTC time, reason and the
    signature's manifestation (latest last; an earlier one it superseded stays listed)."""
    if not decisions:
        return ""
    items = "".join(f'<li class="decision"><strong>{html.escape(PAST.get(d, d))}</strong> by {html.escape(actor)} '
                    f"at {html.escape(at)} UTC: {html.escape(reason)}"
                    f'<br><span class="signature">{html.escape(signature[:1].upper() + signature[1:])}</span></li>'
                    for d, actor, at, reason, signature in decisions)
    return f"<h2>Technician decision</h2><ul>{items}</ul>"


def _blinded_chart(chart: Chart) -> Chart:
    """The gates without the monocyte PE histogram (its statistic is the value, blinded)."""
    return replace(chart, panels=tuple(p for p in chart.panels if not p.title.startswith("monocyte PE")))


def write_sample_report(meas: Measurement, figure: SampleFigure | None, path: Path, *,
                        bead_file: str | None = None, next_step: str | None = None,
                        gating_ml: str | None = None, blinded: bool = False,
                        decisions: tuple[tuple[str, str, str, str, str], ...] = ()) -> Path:
    """Write the report of one measured patient tube (``gating_ml``: the file name of its gates
    as GatingML 2.0, beside the report, to open the automatic gate in FlowJo or FlowKit);
    ``blinded`` (collected after the patient's randomization): the value and everything it
    derives from are withheld (:mod:`pipeline.blinding`); ``signature``: the technician's decision
    and its electronic signature (name, UTC time, meaning; 21 CFR Part 11 §11.50), or "unsigned"."""
    qc = meas.qc
    shown = withheld_reasons(qc.reasons) if blinded else qc.reasons
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in shown) or "<li>none</li>"
    flag = {True: "yes (below the cut-off)", False: "no", None: "no decision (QC fail)"}[
        None if qc.status == "fail" else meas.below_threshold]
    gating = None if figure is None else gating_chart(figure, qc)
    if gating is not None and blinded:
        gating = _blinded_chart(gating)
    gates = to_svg(gating, "g") if gating is not None else "<p><em>no figure data</em></p>"
    stability = meas.gates.get("stability")
    if stability:                       # levels relative to the run's own: no value to withhold
        gates += to_svg(stability_chart(stability), "s")

    def value(text: object) -> object:
        return WITHHELD if blinded else text

    if meas.calibration is None:
        beads = "<p><em>no calibration</em></p>"
    elif blinded:                       # the curve and the PE statistic give the value back
        beads = calibration_table(meas.calibration, bead_file, curve_shown=False)
    else:
        beads = to_svg(calibration_chart(meas.calibration), "b") + calibration_table(meas.calibration, bead_file)
    body = (f"<h1>mHLA-DR {html.escape(meas.patient_id or '-')} &mdash; {html.escape(Path(meas.file).name)}</h1>"
            + (f'<p class="next">{html.escape(next_step)}</p>' if next_step else "")
            + (f'<p class="next">Values {html.escape(WITHHELD)}: this trial is blinded; the unblinded role reads '
               "them in the lab console or with <code>mhladr results --unblinded</code> (audited).</p>"
               if blinded else "")
            + "<h2>Result</h2><table>"
            + _row("AB/C", value(fmt.abc(meas.abc))) + _row("95 % interval", value(fmt.interval(meas.abc_interval)))
            + _row("category", value(meas.category)) + _row("below the cut-off", value(flag))
            + _row("how sure (p_below_threshold)", value(fmt.call_text(meas.p_below_threshold, meas.near_cutoff)))
            + _row("HLA-DR+ monocytes", value(f"{fmt.number(meas.hla_dr_positive_percent, 3)} % (never changes "
                                              "eligibility)"))
            + _row("draw / acquisition / delay", fmt.preanalytics_text(meas.preanalytics))
            + _row("ICU day", meas.icu_day) + _row("in the day 5-10 window", fmt.yes_no(meas.in_window))
            + _row("collection date", meas.collection_date) + _row("monocytes", f"{meas.monocytes:,}")
            + _row(f"monocyte PE {meas.statistic}", value(fmt.number(meas.pe_statistic))) + "</table>"
            + f'<h2>QC: <span class="{qc.status}">{qc.status}</span></h2><ul>{reasons}</ul>'
            + decision_section(decisions)
            + f"<h2>Gates</h2>{gates}"
            + (f'<p>The gates as GatingML 2.0 (FlowJo, FlowKit): <a href="{html.escape(gating_ml)}">'
               f"{html.escape(gating_ml)}</a></p>" if gating_ml else "")
            + f"<h2>Bead calibration</h2>{beads}"
            + "<h2>Provenance</h2><table>" + _row("file", meas.file) + _row("SHA-256", meas.sha256)
            + _row("software version", meas.software_version) + _row("analysed at", meas.analysed_at.isoformat(timespec="seconds"))
            + _row("notes", "; ".join(meas.notes)) + "</table>")
    return _write(Path(path), _page(f"mHLA-DR {meas.patient_id or ''}", body))


def write_bead_report(cal: Calibration, bead_file: str, path: Path) -> Path:
    """Write the report of one bead calibration."""
    rows = "".join(f"<tr><td>{p.bead_value:,.0f}</td><td>{fmt.number(p.fluorescence)}</td><td>{p.events:,}</td>"
                   f"<td>{fmt.percent(p.cv, 1)}</td><td>{html.escape(p.status)}</td></tr>" for p in cal.populations)
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in cal.qc.reasons) or "<li>none</li>"
    body = (f"<h1>Bead calibration &mdash; {html.escape(Path(bead_file).name)}</h1>"
            + to_svg(calibration_chart(cal), "b") + calibration_table(cal, bead_file)
            + "<h2>Levels</h2><table><tr><th>PE per bead</th><th>F</th><th>events</th><th>rCV</th><th>status</th></tr>"
            + rows + "</table>"
            + f'<h2>QC: <span class="{cal.qc.status}">{cal.qc.status}</span></h2><ul>{reasons}</ul>')
    return _write(Path(path), _page(f"Beads {Path(bead_file).name}", body))
