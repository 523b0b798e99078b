"""Bead lot tables: ``lots.csv`` (``lot,low,med_low,med_high,high``, PE molecules per bead)
and ``--lot-values v1,v2,...`` (any number of levels, 0 = blank bead).

Lot values are data, never constants in code (DESIGN.md, The assay). When no table is named,
every command finds it by one rule (:func:`default_table`): ``lots.csv`` beside the FCS files
(the inbox), else ``./lots.csv``.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import BAD_LOT, InputError

LOT_COLUMNS = ("lot", "low", "med_low", "med_high", "high")
LOTS_FILE = "lots.csv"
# The watcher moves an inbox's files into these sub-folders (flows/watcher.py): their lot table
# is the inbox's.
SORTED_INTO = ("processed", "quarantine")
RULE = f"{LOTS_FILE} beside the FCS files (the inbox), else ./{LOTS_FILE}"


@dataclass(frozen=True)
class Lot:
    """A bead lot: its name and the bead value of each level, ascending."""

    name: str | None
    values: tuple[float, ...]


def _parse_values(raw: list[str], where: str, file: str | Path) -> tuple[float, ...]:
    try:
        values = tuple(float(v.strip()) for v in raw)
    except ValueError:
        raise InputError(file, BAD_LOT, f"{where}: bead values must be numbers, got {raw}") from None
    if not values:
        raise InputError(file, BAD_LOT, f"{where}: no bead values")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise InputError(file, BAD_LOT, f"{where}: bead values must be finite and >= 0, got {list(values)}")
    if any(b <= a for a, b in zip(values[:-1], values[1:])):
        raise InputError(file, BAD_LOT, f"{where}: bead values must increase from level to level "
                                        f"(0 = blank, first only), got {list(values)}")
    return values


def parse_lot_values(text: str, file: str | Path) -> Lot:
    """``--lot-values 474,5359,23843,62336`` -> a nameless :class:`Lot` (any number of levels)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return Lot(name=None, values=_parse_values(parts, "--lot-values", file))


def read_lots(path: str | Path) -> dict[str, Lot]:
    """All lots of a ``lots.csv`` with the contract's columns; any problem -> ``bad_lot``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(path, BAD_LOT, f"cannot read the lot table: {exc.strerror}") from None
    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    if not rows or tuple(c.strip().lower() for c in rows[0]) != LOT_COLUMNS:
        raise InputError(path, BAD_LOT, f"the lot table's header must be {','.join(LOT_COLUMNS)}")
    lots: dict[str, Lot] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(LOT_COLUMNS):
            raise InputError(path, BAD_LOT, f"line {line}: expected {len(LOT_COLUMNS) - 1} bead values "
                                            f"after the lot name, got {len(row) - 1}")
        name = row[0].strip()
        if not name:
            raise InputError(path, BAD_LOT, f"line {line}: empty lot name")
        lots[name] = Lot(name=name, values=_parse_values(row[1:], f"line {line} (lot {name})", path))
    return lots


def _normal(name: str) -> str:
    return re.sub(r"^lot[\s_-]*", "", name.strip(), flags=re.IGNORECASE).lower()


def find_lot(name: str, lots: dict[str, Lot], file: str | Path) -> Lot:
    """The lot called ``name`` (case-insensitive; 'lotA' and 'A' match each other)."""
    if name in lots:
        return lots[name]
    matches = [lot for key, lot in lots.items() if _normal(key) == _normal(name)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(lots)) or "none"
    raise InputError(file, BAD_LOT, f"unknown bead lot {name!r} (lots known: {known})")


def resolve_lot(bead_file: str | Path, bead_lot: str | None, lots_path: str | Path) -> Lot:
    """The lot of a bead file from its ``BEAD LOT`` keyword or file name (``Acquisition.bead_lot``)."""
    if not bead_lot:
        raise InputError(bead_file, BAD_LOT, "the bead file names no lot (no BEAD LOT keyword, no lot in its "
                                             "name): give --lot or --lot-values")
    lots = read_lots(lots_path)
    try:
        return find_lot(bead_lot, lots, bead_file)
    except InputError as err:
        raise InputError(bead_file, BAD_LOT, f"{err.message} in {lots_path}") from None


def default_table(folder: str | Path, cwd: str | Path = ".") -> Path | None:
    """The lot table when none is named: ``lots.csv`` in ``folder`` (the inbox; for a file the
    watcher moved to ``processed/`` or ``quarantine/``, the inbox above it), else ``lots.csv`` in
    the current folder; None when there is neither."""
    folder = Path(folder).resolve()
    inbox = folder.parent if folder.name in SORTED_INTO else folder
    for candidate in (inbox / LOTS_FILE, Path(cwd).resolve() / LOTS_FILE):
        if candidate.is_file():
            return candidate
    return None


def no_table(file: str | Path) -> InputError:
    """The error of a bead tube whose lot table was not found."""
    return InputError(file, BAD_LOT, f"no lot table: put {LOTS_FILE} ({','.join(LOT_COLUMNS)}) beside the FCS "
                                     f"files or in the current folder, or give --lots CSV")


def choose_lot(bead_file: str | Path, bead_lot: str | None, *, lot: str | None = None,
               lot_values: str | None = None, lots_path: str | Path | None = None) -> Lot:
    """The lot the command line asks for: ``--lot-values``, else ``--lot`` in the table, else
    the lot the bead file names (keyword or file name) in the table (``lots_path``, else the
    :func:`default_table` of the bead file's folder)."""
    if lot_values is not None:
        return parse_lot_values(lot_values, bead_file)
    table = lots_path or default_table(Path(bead_file).parent)
    if table is None:
        raise no_table(bead_file)
    if lot is not None:
        return find_lot(lot, read_lots(table), table)
    return resolve_lot(bead_file, bead_lot, table)
