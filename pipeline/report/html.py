"""The per-sample HTML report: numbers, QC, provenance and the figures, in one self-contained file."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from pipeline.acquisition import Acquisition
from pipeline.measurement import Measurement
from pipeline.report.gating_figure import draw_gating_figure


def _img(png: Path | None, alt: str) -> str:
    if png is None or not png.is_file():
        return f"<p><em>{html.escape(alt)}: no figure</em></p>"
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def _row(name: str, value: object) -> str:
    return f"<tr><th>{html.escape(name)}</th><td>{html.escape('-' if value is None else str(value))}</td></tr>"


def write_sample_report(result: Measurement, acq: Acquisition, path: Path,
                        calibration_png: Path | None = None) -> Path:
    """Write the report of one measured patient tube (``acq``: its compensated acquisition)."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        gating_png = draw_gating_figure(Path(tmp) / "gating.png", acq.events, [c.name for c in acq.channels],
                                        acq.roles.as_dict(), result.gating, result.pe_statistic, result.statistic)
        gating_img = _img(gating_png, "gating")
    abc = f"{result.abc:,.0f}" if result.abc is not None else None
    interval = (f"{result.abc_interval[0]:,.0f} - {result.abc_interval[1]:,.0f}"
                if result.abc_interval else None)
    key = result.calibration.key
    curve = result.calibration.curve
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result.qc.reasons) or "<li>none</li>"
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mHLA-DR {html.escape(result.patient_id or '')}</title>
<style>body{{font-family:sans-serif;margin:2em}} th{{text-align:left;padding-right:1em}}
.pass{{color:#070}} .review{{color:#a60}} .fail{{color:#b00}}</style></head><body>
<h1>mHLA-DR {html.escape(result.patient_id or '-')} &mdash; {html.escape(Path(result.file).name)}</h1>
<h2>Result</h2><table>
{_row("AB/C", abc)}{_row("95 % interval", interval)}{_row("category", result.category)}
{_row("below threshold", result.below_threshold)}{_row("ICU day", result.icu_day)}
{_row("in window", result.in_window)}{_row("collection date", result.collection_date)}
{_row("monocytes", result.monocytes)}{_row(f"monocyte PE {result.statistic}", result.pe_statistic)}
</table>
<h2>QC: <span class="{result.qc.status}">{result.qc.status}</span></h2><ul>{reasons}</ul>
<h2>Gates</h2>{gating_img}
<h2>Bead calibration</h2>{_img(calibration_png, "bead calibration")}
<table>{_row("bead file sha256", key.sha256)}{_row("lot", key.lot)}
{_row("instrument", f"{key.instrument} {key.serial or ''}")}{_row("channel / voltage / gain",
 f"{key.channel} / {key.voltage} / {key.gain}")}
{_row("curve", f"log10(AB/C) = {curve.slope:.4f} log10(F) + {curve.intercept:.4f}, R^2 {curve.r2:.4f}"
      if curve else None)}{_row("calibration QC", result.calibration.qc.status)}</table>
<h2>Provenance</h2><table>{_row("file", result.file)}{_row("sha256", result.sha256)}
{_row("software version", result.software_version)}{_row("analysed at", result.analysed_at.isoformat())}
{_row("notes", "; ".join(result.notes) or None)}</table>
</body></html>
"""
    path.write_text(body, encoding="utf-8")
    return path
