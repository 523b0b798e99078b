"""Arguments and checks several commands share (folders, optional files, dates)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from pipeline.errors import BAD_INPUT, InputError


def folder(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise InputError(path, BAD_INPUT, "not a folder")
    return p


def optional_file(path: str | None) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise InputError(path, BAD_INPUT, "file not found")
    return path


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbox", help="folder of FCS files")
    parser.add_argument("--registry", help="patient registry CSV (imported, idempotent)")
    parser.add_argument("--lots", help="bead lot table CSV (default: INBOX/lots.csv if present)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def parse_today(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("--today", BAD_INPUT, f"{text!r} is not a date (YYYY-MM-DD)") from None
