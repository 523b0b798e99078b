"""``mhladr analyze SAMPLE --beads BEADS (--lot ... | --lot-values ...) [--registry CSV]``.

One patient tube and its bead tube, no database: calibrate, gate, convert, QC, print the
contract's document (DESIGN.md, Interfaces). Exit 2 for unusable input (e.g. ``wrong_panel``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any



def _admission(registry: str | None, patient_id: str | None) -> Any:
    from pipeline.registry import read_registry

    if not registry or not patient_id:
        return None
    rows, _ = read_registry(registry)
    row = next((r for r in rows if r.patient_id == patient_id), None)
    return row.icu_admission if row else None


def _human(doc: dict[str, Any]) -> str:
    abc = f"{doc['abc']:,.0f}" if doc["abc"] is not None else "-"
    interval = doc["abc_interval"]
    ci = f" (95% {interval[0]:,.0f}-{interval[1]:,.0f})" if interval else ""
    flag = {True: "BELOW threshold", False: "not below threshold", None: "no decision (QC fail)"}
    lines = [doc["file"],
             f"  patient {doc['patient_id'] or '-'}  collected {doc['collection_date'] or '-'}  ICU day "
             f"{doc['icu_day'] if doc['icu_day'] is not None else '-'}  in window {doc['in_window']}",
             f"  monocytes {doc['monocytes']}  PE {doc['statistic']} "
             f"{doc['pe_statistic'] if doc['pe_statistic'] is None else round(doc['pe_statistic'], 1)}",
             f"  mHLA-DR {abc} AB/C{ci}  {doc['category'] or '-'}  {flag[doc['below_threshold']]}",
             f"  QC {doc['qc']['status']}"]
    lines += [f"    - {r}" for r in doc["qc"]["reasons"]]
    cal = doc["calibration"]
    lines.append(f"  calibration {Path(cal['file']).name}  lot {cal['lot']}  slope {cal['slope']}  "
                 f"R^2 {cal['r2']}  QC {cal['qc']['status']}")
    if doc.get("figure"):
        lines.append(f"  figure {doc['figure']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.bead_calibration import calibrate_file, calibration_document
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.fcs import read_fcs
    from pipeline.lots import choose_lot
    from pipeline.measurement import measure, measurement_document, require_panel
    from pipeline.tubes import template

    settings = load_settings()
    sample = read_fcs(args.sample, settings)
    require_panel(sample)
    if sample.kind == "beads":
        raise InputError(args.sample, BAD_INPUT, "this is a bead tube, not a patient tube")
    beads = read_fcs(args.beads, settings)
    lot = choose_lot(args.beads, beads.bead_lot, lot=args.lot, lot_values=args.lot_values, lots_path=args.lots)
    cal = calibrate_file(beads, lot, settings)
    result, gating = measure(sample, cal, settings, admission=_admission(args.registry, sample.patient_id),
                             template=template(settings.gating_template, settings.gating_template_gate))
    doc = measurement_document(result, calibration_document(cal, beads.path))
    if args.figure:
        from pipeline.report.chart import to_png
        from pipeline.report.figure_data import SampleFigure
        from pipeline.report.figures import gating_chart
        figure = SampleFigure.of(sample, gating, result.pe_statistic, result.statistic)
        doc["figure"] = str(to_png(gating_chart(figure, result.qc, Path(sample.path).name), Path(args.figure)))
    return doc, _human(doc)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="mHLA-DR AB/C of one patient tube with its bead tube")
    parser.add_argument("sample", help="patient tube FCS file")
    parser.add_argument("--beads", required=True, help="bead tube FCS file of the same instrument and day")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--lot", help="lot name in the lot table")
    group.add_argument("--lot-values", help="bead values, comma-separated, ascending (0 = blank)")
    parser.add_argument("--lots", default="lots.csv", help="lot table (default: ./lots.csv)")
    parser.add_argument("--registry", help="patient registry CSV (ICU admission for the ICU day)")
    parser.add_argument("--figure", help="write the gating figure (PNG) here")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)
