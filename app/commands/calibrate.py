"""``mhladr calibrate BEADS (--lot NAME [--lots lots.csv] | --lot-values v1,v2,...)``.

Fits the bead standard curve of one bead tube and prints the contract's document
(DESIGN.md, Interfaces). Without --lot or --lot-values the lot named by the file
(``BEAD LOT`` keyword or file name) is looked up in the lot table.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.common import LOTS_HELP, add_json, command, output_target


def _human(doc: dict[str, Any]) -> str:
    from pipeline import formatting as fmt

    lines = [f"{doc['file']}", f"  {doc['instrument'] or '?'}  channel {doc['channel']}  voltage "
             f"{fmt.setting(doc['voltage'])}  lot {doc['lot'] or '-'}  statistic {doc['statistic']}"
             + (f"  clustered on {','.join(doc['clustering_channels'])}" if len(doc["clustering_channels"]) > 1
                else "")]
    for p in doc["peaks"]:
        lines.append(f"    bead {p['bead_value']:>10,.0f}  F {fmt.number(p['fluorescence']):>10}  "
                     f"{p['events']:>6} events  rCV {fmt.percent(p['cv'], 1):>6}  {p['status']}")
    for v in doc["missing_levels"]:
        lines.append(f"    bead {v:>10,.0f}  not found")
    if doc["slope"] is not None:
        lines.append(f"  log10(bead) = {doc['slope']:.4f} * log10(F) + {doc['intercept']:.4f}   "
                     f"R^2 {doc['r2']:.4f}")
    lines.append(f"  QC {doc['qc']['status']}")
    lines += [f"    - {r}" for r in doc["qc"]["reasons"]]
    if doc.get("figure"):
        lines.append(f"  figure {doc['figure']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.bead_calibration import calibrate_file, calibration_document
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.fcs import read_fcs
    from pipeline.lots import choose_lot

    figure = output_target(args.figure)
    settings = load_settings()
    acq = read_fcs(args.beads, settings)
    if acq.kind == "sample":
        raise InputError(args.beads, BAD_INPUT, f"this is a patient tube ({acq.patient_id}), not a bead tube: "
                                                "give the bead tube (mhladr analyze takes a patient tube)")
    lot = choose_lot(args.beads, acq.bead_lot, lot=args.lot, lot_values=args.lot_values, lots_path=args.lots)
    clustering = [c.strip() for c in (args.clustering_channels or "").split(",") if c.strip()] or None
    cal = calibrate_file(acq, lot, settings, channel=args.channel, clustering_channels=clustering)
    doc = calibration_document(cal, acq.path)
    if figure is not None:
        from pipeline.report.chart import to_png
        from pipeline.report.figures import calibration_chart
        doc["figure"] = str(to_png(calibration_chart(cal, Path(acq.path).name), figure))
    return doc, _human(doc)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command(subparsers, "calibrate", summary="fit the bead standard curve of one bead tube",
                     description="Finds the bead populations in the PE channel, fits\n"
                                 "log10(PE per bead) = slope * log10(F) + intercept and checks it (every level found,\n"
                                 "R^2, slope, peak CVs). The lot comes from --lot-values, or --lot in the lot table,\n"
                                 "or the lot the file names (BEAD LOT keyword or BEADS_<date>_lot<NAME>.fcs).\n"
                                 "Nothing is stored: `mhladr run` stores calibrations.",
                     examples="mhladr calibrate inbox/BEADS_2026-03-12_lotA_CANTO.fcs\n"
                              "mhladr calibrate beads.fcs --lot lotB --lots /srv/lab/lots.csv --figure beads.png\n"
                              "mhladr calibrate rainbow.fcs --lot-values 0,792,2079,6588,16471,47497,137049,271647")
    parser.add_argument("beads", help="bead tube FCS file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--lot", help="lot name in the lot table")
    group.add_argument("--lot-values", help="bead values, comma-separated, ascending (0 = blank)")
    parser.add_argument("--lots", help=LOTS_HELP)
    parser.add_argument("--channel", help="fluorescence channel ($PnN; default: the PE channel)")
    parser.add_argument("--clustering-channels", metavar="CH,CH,...",
                        help="find bead populations jointly in these channels (multi-dye beads, e.g. "
                             "FL1,FL3 for rainbow beads); the statistic stays in --channel")
    parser.add_argument("--figure", metavar="PNG", help="write the calibration figure here (a .png file)")
    add_json(parser)
    parser.set_defaults(func=run)
