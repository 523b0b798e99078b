"""``mhladr reprocess FILE|SHA256 --reason TEXT``: run a rejected file again once its cause is fixed.

A re-run of ``mhladr run`` never touches a file it already processed (the contract); a bead lot
added to ``lots.csv``, a file renamed to carry its lot, or a corrected setting is taken up by
this explicit, audited request, signed once users exist (the password re-entered). The lot table is found the way ``run`` finds it. A bead tube
calibrated this way finishes the samples that were waiting for it (``finished``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from app.common import LOTS_HELP, add_json, command, lots_table, optional_file
from app.identity import require
from app.signing import add_signing, signer


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings
    from pipeline.decisions import reprocess
    from pipeline.errors import BAD_INPUT, InputError
    from fcsio.segments import sha256_file
    from pipeline.processing import Processor
    from pipeline.signing import SignatureRefused
    from pipeline.store import open_store
    from pipeline.store.signatures import UNSIGNED

    target = args.target
    by_hash = re.fullmatch(r"[0-9a-fA-F]{64}", target) is not None
    if not by_hash and not Path(target).is_file():
        raise InputError(target, BAD_INPUT, "no such file: give the file where it is now (a watched inbox moves "
                                            "rejected files to quarantine/), or its SHA-256")
    sha = target.lower() if by_hash else sha256_file(Path(target))
    settings = load_settings()
    who = require("reprocess", actor=args.actor)
    sign_as = signer(who, args)
    if by_hash:                       # the lot table beside the file where the database last saw it
        with open_store(settings) as store:
            rec = store.files.original(sha)
        folder = Path(rec.path).parent if rec else Path.cwd()
    else:
        folder = Path(target).resolve().parent
    processor = Processor(settings, registry_csv=optional_file(args.registry), lots_csv=lots_table(args.lots, folder))
    try:
        done = reprocess(processor, sha, args.reason, sign_as, path=None if by_hash else target)
    except SignatureRefused as exc:
        raise InputError(target, "signature_refused", str(exc)) from None
    finally:
        processor.close()
    result, finished, signature = done.result, done.finished, done.signature
    doc = {**result.as_dict(), "finished": [r.as_dict() for r in finished],
           "signature": signature.manifestation() if signature else None}
    lines = [f"{Path(result.file).name}: {result.status}", *(f"  - {r}" for r in result.reasons),
             f"  {signature or UNSIGNED}"]
    if finished:
        lines.append("samples finished now that their beads are calibrated:")
        lines += [f"  {Path(r.file).name}: {r.status}" for r in finished]
    return doc, "\n".join(lines)


def register(subparsers: Any) -> None:
    parser = command(subparsers, "reprocess", summary="process a rejected file again once its cause is fixed",
                     description="`mhladr run` never processes a file twice; after fixing what a rejection names\n"
                                 "(a lot added to lots.csv, a file renamed to carry its lot or patient), this runs\n"
                                 "the file again. Who asked and why go to the audit trail. Give the file where it\n"
                                 "is now (renamed or moved: the results database is told), or its SHA-256.",
                     examples="mhladr reprocess inbox/BEADS_2026-03-12_lotC_CANTO.fcs --reason 'lot C added to lots.csv'\n"
                              "mhladr reprocess inbox/quarantine/BEADS_2026-03-12_lotA.fcs --reason 'renamed with its lot'")
    parser.add_argument("target", help="the file, or its SHA-256")
    parser.add_argument("--reason", required=True, help="what was fixed (kept in the audit trail)")
    parser.add_argument("--actor", default="", help="technician name (default: login name)")
    parser.add_argument("--lots", help=LOTS_HELP)
    parser.add_argument("--registry", help="patient registry CSV (imported, idempotent)")
    add_signing(parser)
    add_json(parser)
    parser.set_defaults(func=run)
