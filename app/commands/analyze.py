"""``mhladr analyze SAMPLE --beads BEADS (--lot ... | --lot-values ...) [--registry CSV]``.

One patient tube and its bead tube, no database: calibrate, gate, convert, QC, print the
contract's document (DESIGN.md, Interfaces). Exit 2 for unusable input (e.g. ``wrong_panel``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.common import LOTS_HELP, add_json, command, optional_file, output_target


def _human(doc: dict[str, Any]) -> str:
    from pipeline import formatting as fmt

    ci = f" (95% {fmt.interval(doc['abc_interval'])})" if doc["abc_interval"] else ""
    flag = {True: "BELOW threshold", False: "not below threshold", None: "no decision (QC fail)"}
    day = doc["icu_day"] if doc["icu_day"] is not None else "-"
    lines = [doc["file"],
             f"  patient {doc['patient_id'] or '-'}  collected {doc['collection_date'] or '-'}  ICU day {day}  "
             f"in window {fmt.yes_no(doc['in_window'])}",
             f"  monocytes {doc['monocytes']:,}  PE {doc['statistic']} {fmt.number(doc['pe_statistic'])}",
             f"  mHLA-DR {fmt.abc(doc['abc'])} AB/C{ci}  {doc['category'] or '-'}  {flag[doc['below_threshold']]}",
             f"  {fmt.call_text(doc['p_below_threshold'], doc['near_cutoff'])}  "
             f"HLA-DR+ monocytes {fmt.number(doc['hla_dr_positive_percent'], 3)} %",
             f"  {fmt.preanalytics_text(doc['preanalytics'])}",
             f"  QC {doc['qc']['status']}"]
    lines += [f"    - {r}" for r in doc["qc"]["reasons"]]
    cal = doc["calibration"]
    lines.append(f"  calibration {Path(cal['file']).name}  lot {cal['lot']}  slope {fmt.number(cal['slope'])}  "
                 f"R^2 {fmt.number(cal['r2'])}  QC {cal['qc']['status']}")
    lines += [f"  note: {n}" for n in doc["notes"]]
    if doc.get("figure"):
        lines.append(f"  figure {doc['figure']}")
    if doc.get("gating_ml"):
        lines.append(f"  gates (GatingML 2.0) {doc['gating_ml']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.bead_calibration import calibrate_file, calibration_document
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.fcs import read_fcs
    from pipeline.lots import choose_lot
    from pipeline.measurement import measure, measurement_document, require_panel
    from pipeline.registry import SampleLogs, admission_of
    from pipeline.tubes import template, write_gates

    figure = output_target(args.figure)
    gating_ml = output_target(args.gating_ml, ".xml", "the gates are written as GatingML 2.0 XML")
    registry = optional_file(args.registry)
    settings = load_settings()
    sample = read_fcs(args.sample, settings)
    require_panel(sample)
    if sample.kind == "beads":
        raise InputError(args.sample, BAD_INPUT, "this is a bead tube, not a patient tube: give the patient tube "
                                                 "first and the bead tube with --beads")
    beads = read_fcs(args.beads, settings)
    lot = choose_lot(args.beads, beads.bead_lot, lot=args.lot, lot_values=args.lot_values, lots_path=args.lots)
    cal = calibrate_file(beads, lot, settings)
    found = admission_of(registry, sample.patient_id)
    log, log_notes = SampleLogs.read(registry).of(sample.patient_id, sample.collection_date)
    result, gating = measure(sample, cal, settings, admission=found.admission, sample_log=log,
                             template=template(settings.gating_template, settings.gating_template_gate))
    doc = measurement_document(result, calibration_document(cal, beads.path))
    doc["notes"] = [*found.notes, *log_notes, *doc["notes"]]
    if figure is not None:
        from pipeline.report.chart import to_png
        from pipeline.report.figure_data import SampleFigure
        from pipeline.report.figures import gating_chart
        data = SampleFigure.of(sample, gating, result.pe_statistic, result.statistic)
        doc["figure"] = str(to_png(gating_chart(data, result.qc, Path(sample.path).name), figure))
    if gating_ml is not None:
        if write_gates(gating, sample, gating_ml) is None:
            raise InputError(args.gating_ml, BAD_INPUT, "no gates written: this tube has no automatic monocyte "
                                                        "gate (none found, or the lab's template is the gate)")
        doc["gating_ml"] = str(gating_ml)
    return doc, _human(doc)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command(subparsers, "analyze", summary="mHLA-DR AB/C of one patient tube with its bead tube",
                     description="Calibrates the bead tube, gates the monocytes (debris, doublets, CD14 bright with\n"
                                 "intermediate SSC), converts their PE median to AB/C with a 95 % interval, and\n"
                                 "checks QC (pass / review / fail, with reasons). With --registry the ICU day comes\n"
                                 "from the registry's ICU admission. Nothing is stored: `mhladr run` stores results.",
                     examples="mhladr analyze inbox/PT-0042_D07_HLADR.fcs --beads inbox/BEADS_2026-03-12_lotA_CANTO.fcs\n"
                              "mhladr analyze PT-0042.fcs --beads beads.fcs --lot lotA --registry registry.csv "
                              "--figure PT-0042.png")
    parser.add_argument("sample", help="patient tube FCS file")
    parser.add_argument("--beads", required=True, help="bead tube FCS file of the same instrument and day")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--lot", help="lot name in the lot table")
    group.add_argument("--lot-values", help="bead values, comma-separated, ascending (0 = blank)")
    parser.add_argument("--lots", help=LOTS_HELP)
    parser.add_argument("--registry", help="patient registry CSV (ICU admission for the ICU day)")
    parser.add_argument("--figure", metavar="PNG", help="write the gating figure here (a .png file)")
    parser.add_argument("--gating-ml", metavar="XML", help="write the tube's gates here as GatingML 2.0 (a .xml file "
                                                           "FlowKit or FlowJo applies to the same FCS file; the final "
                                                           "gate's id is 'monocytes')")
    add_json(parser)
    parser.set_defaults(func=run)
