"""Is a tube compensated, and could it be? Missing spillover is refused as a plain pass.

Digital cytometers (FACSDiva: FCS 3.x, area channels) store uncompensated data and write
the matrix as $SPILL/$SPILLOVER; without it the PerCP-Cy5.5 (CD14) signal that spills into
the PE detector stays in the monocytes' HLA-DR and the AB/C reads high (DESIGN.md,
Compensation; Roederer 2001, Cytometry 45:194). Analog instruments that compensate in
hardware (FACSCalibur, FCS 2.0) are not affected. A lab may supply the matrix of an
instrument itself (setting ``spillover_file``): a CSV ``serial,source,detector,coefficient``
with one row per off-diagonal spill (fraction of the source fluorochrome's signal seen in the
detector, $PnN names; the diagonal is 1), rows of all instruments in one file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gating.compensation import spillover_problems
from pipeline.acquisition import Header, Spillover
from pipeline.errors import BAD_SETTING, InputError

LAB_KEYWORD = "spillover_file"
COLUMNS = ("serial", "source", "detector", "coefficient")


def lab_spillover(path: str, serial: str | None, channels: tuple[str, ...]) -> Spillover | None:
    """The lab's matrix for instrument ``serial`` over the file's ``channels`` (None: no row for it).
    Raises ``bad_setting`` naming the file when it is unusable."""
    if not path or not serial:
        return None
    try:
        rows = list(csv.DictReader(Path(path).read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, BAD_SETTING, f"spillover_file cannot be read: {exc}") from None
    if rows and any(c not in rows[0] for c in COLUMNS):
        raise InputError(path, BAD_SETTING, f"spillover_file needs the columns {','.join(COLUMNS)}")
    mine = [r for r in rows if (r["serial"] or "").strip() == serial.strip()]
    if not mine:
        return None
    names: list[str] = []
    for r in mine:
        for ch in (r["source"].strip(), r["detector"].strip()):
            if ch not in channels:
                raise InputError(path, BAD_SETTING, f"spillover_file names channel {ch!r} for serial {serial}, "
                                                    f"which its files lack ({', '.join(channels)})")
            if ch not in names:
                names.append(ch)
    matrix = np.eye(len(names))
    for r in mine:
        try:
            matrix[names.index(r["source"].strip()), names.index(r["detector"].strip())] = float(r["coefficient"])
        except ValueError:
            raise InputError(path, BAD_SETTING, f"spillover_file coefficient {r['coefficient']!r} "
                                                "is not a number") from None
    problems = spillover_problems(names, matrix)
    if problems:
        raise InputError(path, BAD_SETTING, f"spillover_file matrix of serial {serial} is unusable: "
                                            + "; ".join(problems))
    return Spillover(keyword=LAB_KEYWORD, channels=tuple(names), matrix=matrix)


def stores_uncompensated(header: Header) -> bool:
    """FCS 3.x with area channels for PE and CD14: the data are stored uncompensated."""
    pe, cd14 = header.roles.pe, header.roles.cd14
    return (header.fcs_version.startswith("3") and pe is not None and cd14 is not None
            and pe.upper().endswith("-A") and cd14.upper().endswith("-A"))


def compensation_state(header: Header) -> str:
    """'compensated (KEYWORD)', 'uncompensated' or 'as stored' (hardware or single-colour)."""
    if header.spillover is not None:
        return f"compensated ({header.spillover.keyword})"
    return "uncompensated" if stores_uncompensated(header) else "as stored"


def missing_compensation(header: Header) -> tuple[str, str] | None:
    """QC review for an uncompensated tube of a digital instrument without a matrix."""
    if header.spillover is not None or not stores_uncompensated(header):
        return None
    who = " ".join(x for x in (header.instrument, header.serial) if x) or "this instrument"
    return ("review", f"no compensation: this FCS {header.fcs_version} tube of {who} stores uncompensated "
                      f"area channels but carries no $SPILL/$SPILLOVER; CD14 PerCP-Cy5.5 ({header.roles.cd14}) "
                      f"spills into PE ({header.roles.pe}), so the AB/C is likely too high: re-export with the "
                      "compensation or supply the instrument's matrix (setting spillover_file)")


def pairing_finding(bead_state: str | None, sample_state: str) -> tuple[str, str] | None:
    """Beads and cells must share the compensation state (DESIGN.md, Calibration)."""
    if bead_state is None or bead_state.split(" ")[0] == sample_state.split(" ")[0]:
        return None
    return ("review", f"compensation differs: beads {bead_state}, sample {sample_state} "
                      "(beads and cells must share one compensation state)")
