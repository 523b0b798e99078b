"""``mhladr inspect FILE``: what the reader finds in one FCS file (Interfaces contract), from its
HEADER and TEXT (hashed and checked, no event decoded)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from app.common import add_json, command

if TYPE_CHECKING:
    from pipeline.acquisition import Header


def compensation_summary(acq: Header) -> dict[str, Any]:
    """How the file's data stand with respect to compensation: a file with a spillover matrix is
    compensated by the reader with it (``applied``), before any fluorescence is used; ``needed``:
    the data are stored uncompensated (FCS 3.x area channels) and no matrix came with them."""
    from pipeline.compensation_state import stores_uncompensated

    if acq.spillover is None:
        return {"state": "no_matrix", "keyword": None, "channels": [], "matrix": None,
                "needed": stores_uncompensated(acq)}
    return {"state": "applied", "keyword": acq.spillover.keyword, "needed": False,
            "channels": list(acq.spillover.channels), "matrix": acq.spillover.matrix.round(6).tolist()}


def describe(acq: Header) -> dict[str, Any]:
    """The contract's ``inspect`` document for an acquisition."""
    return {
        "file": acq.path,
        "sha256": acq.sha256,
        "fcs_version": acq.fcs_version,
        "instrument": acq.instrument,
        "serial": acq.serial,
        "acquired": acq.acquired.isoformat() if acq.acquired else None,
        "events": acq.n_events,
        "channels": [ch.as_dict() for ch in acq.channels],
        "roles": acq.roles.as_dict(),
        "kind": acq.kind,
        "patient_id": acq.patient_id,
        "collection_date": acq.collection_date.isoformat() if acq.collection_date else None,
        "bead_lot": acq.bead_lot,
        "compensation": compensation_summary(acq),
        "data_set": acq.data_set,
        "data_sets": acq.data_sets,
        "notes": list(acq.notes),
    }


def _human(doc: dict[str, Any]) -> str:
    lines = [f"{doc['file']}",
             f"  FCS {doc['fcs_version']}  {doc['instrument'] or '?'} (serial {doc['serial'] or '?'})"
             f"  acquired {doc['acquired'] or '?'}",
             f"  {doc['events']} events, {len(doc['channels'])} channels, data set {doc['data_set']} "
             f"(data sets 0..{doc['data_sets'] - 1}: --data-set N)",
             f"  kind {doc['kind']}  patient {doc['patient_id'] or '-'}  collected "
             f"{doc['collection_date'] or '-'}  bead lot {doc['bead_lot'] or '-'}",
             "  roles " + ", ".join(f"{k}={v}" for k, v in doc["roles"].items() if v),
             f"  compensation {doc['compensation']['state']}"
             + (f" ({doc['compensation']['keyword']})" if doc['compensation']['keyword'] else "")
             + (": uncompensated FCS 3.x area data without $SPILL/$SPILLOVER (QC review; setting spillover_file)"
                if doc["compensation"].get("needed") else "")]
    for ch in doc["channels"]:
        lines.append(f"    {ch['name']:<16} {ch['label']:<20} range {ch['range']:<10g} "
                     f"V {ch['voltage'] if ch['voltage'] is not None else '-'}  gain {ch['gain']}")
    lines += [f"  note: {n}" for n in doc["notes"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.fcs import read_header   # HEADER and TEXT only: no event is decoded to describe a file

    doc = describe(read_header(args.file, data_set=args.data_set))
    return doc, _human(doc)


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "inspect", summary="describe one FCS file (no event decoded)",
                description="Version, instrument, acquisition date, channels with their labels, voltages and gains,\n"
                            "the channel roles found (scatter, PE = HLA-DR, PerCP-Cy5.5 = CD14), bead tube or patient\n"
                            "tube, patient, collection date, bead lot, compensation, and the reader's notes.\n"
                            "Data sets are numbered from 0 (Beckman LMD files hold two).",
                examples="mhladr inspect inbox/PT-0042_D07_HLADR.fcs\n"
                         "mhladr inspect run42.LMD --data-set 1 --json")
    p.add_argument("file", help="FCS file (.fcs, .lmd)")
    p.add_argument("--data-set", type=int, default=0, metavar="N",
                   help="data set to read, numbered from 0 (default 0: the first)")
    add_json(p)
    p.set_defaults(func=run)
