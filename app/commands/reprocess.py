"""``mhladr reprocess FILE|SHA256 --reason TEXT``: run a rejected file again once its cause is fixed.

A re-run of ``mhladr run`` never touches a file it already processed (the contract); a bead lot
added to ``lots.csv`` or a corrected setting is taken up by this explicit, audited request.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from app.identity import require



def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from pipeline.config import load_settings
    from pipeline.fcs import sha256_file
    from pipeline.processing import Processor

    target = args.target
    sha = target.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", target) else sha256_file(Path(target))
    who = require("reprocess", actor=args.actor)
    processor = Processor(load_settings(), registry_csv=args.registry, lots_csv=args.lots)
    try:
        result = processor.reprocess(sha, reason=args.reason, actor=who.name)
    finally:
        processor.close()
    doc = result.as_dict()
    return doc, f"{Path(result.file).name}: {result.status}\n" + "\n".join(f"  - {r}" for r in result.reasons)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("reprocess", help="process a rejected file again (audited)")
    parser.add_argument("target", help="the file, or its SHA-256")
    parser.add_argument("--reason", required=True, help="what was fixed (kept in the audit trail)")
    parser.add_argument("--actor", default="", help="who asks: single-user mode only (default: the login), "
                                                    "or an admin's script")
    parser.add_argument("--lots", help="bead lot table CSV")
    parser.add_argument("--registry", help="patient registry CSV (imported, idempotent)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)
