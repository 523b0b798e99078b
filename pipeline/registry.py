"""The patient registry CSV: ``patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion``
plus optional ``randomized_at`` (DESIGN.md, Interfaces/Inputs), and the optional sample-log
columns ``collected_at`` (the draw, ISO date or date-time), ``tube_type`` and ``storage`` of the
patient's screening sample (:class:`SampleLogs`; pre-analytics, issue 18).

Dates are ISO 8601 dates or date-times; ventilation is yes/no; an empty exclusion means none.
:func:`read_registry` is pure (no database): a bad row is reported with its line number and
reason while good rows still load. :func:`import_registry` loads the good rows into the store
(idempotent; changes audited with before/after).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.eligibility import PatientFacts, as_date, parse_date_or_datetime
from pipeline.errors import BAD_INPUT, InputError
from pipeline.preanalytics import SampleLog

if TYPE_CHECKING:
    from pipeline.store import ImportSummary, Store

REQUIRED = ("patient_id", "icu_admission", "sofa_24h", "mechanical_ventilation", "exclusion")
OPTIONAL = ("randomized_at", "collected_at", "tube_type", "storage")
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}
# Pseudonymous study IDs only: letters, digits and - _ . (no names, no spaces).
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class RowError:
    """A registry row that was not loaded: its line number in the file and why."""

    line: int
    patient_id: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "patient_id": self.patient_id, "reason": self.reason}


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in YES:
        return True
    if value in NO:
        return False
    raise ValueError(f"mechanical_ventilation must be yes or no, not {text!r}")


def _parse_row(row: dict[str, str | None]) -> PatientFacts:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    pid = cell("patient_id")
    if not PATIENT_ID.match(pid):
        raise ValueError(f"patient_id {pid!r} is not a pseudonymous study ID (letters, digits, - _ .)")
    try:
        admission = parse_date_or_datetime(cell("icu_admission"))
    except ValueError:
        raise ValueError(f"icu_admission {cell('icu_admission')!r} is not an ISO date or date-time") from None
    try:
        sofa = int(cell("sofa_24h"))
    except ValueError:
        raise ValueError(f"sofa_24h {cell('sofa_24h')!r} is not an integer") from None
    if not 0 <= sofa <= 24:
        raise ValueError(f"sofa_24h {sofa} is outside 0..24")
    ventilated = _parse_bool(cell("mechanical_ventilation"))
    randomized: date | datetime | None = None
    if cell("randomized_at"):
        try:
            randomized = parse_date_or_datetime(cell("randomized_at"))
        except ValueError:
            raise ValueError(f"randomized_at {cell('randomized_at')!r} is not an ISO date or date-time") from None
    return PatientFacts(pid, admission, sofa, ventilated, cell("exclusion"), randomized)


def read_registry(path: str | Path) -> tuple[list[PatientFacts], list[RowError]]:
    """Parse a registry CSV row by row. Raises :class:`InputError` only when the file itself is
    unusable (missing, unreadable, required columns absent); bad rows go to the error list.
    A patient listed twice keeps its first row (the repeat is an error)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(path, BAD_INPUT, f"cannot read the registry: {(exc.strerror or str(exc)).lower()}") from None
    except UnicodeDecodeError:
        raise InputError(path, BAD_INPUT, "the registry is not UTF-8 text: save it as CSV UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(path, BAD_INPUT, f"registry lacks column(s) {', '.join(missing)} (header: "
                                          f"{','.join(REQUIRED)}[,{','.join(OPTIONAL)}])")
    rows: list[PatientFacts] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        pid = (row.get("patient_id") or "").strip()
        try:
            facts = _parse_row(row)
        except ValueError as exc:
            errors.append(RowError(line, pid, str(exc)))
            continue
        if facts.patient_id in seen:
            errors.append(RowError(line, pid, "patient_id listed twice (first row kept)"))
            continue
        seen.add(facts.patient_id)
        rows.append(facts)
    return rows, errors


@dataclass(frozen=True)
class Admission:
    """A patient's ICU admission as a registry file gives it, with notes on why it may not."""

    admission: date | datetime | None
    notes: tuple[str, ...] = ()


def admission_of(path: str | Path | None, patient_id: str | None) -> Admission:
    """The ICU admission of ``patient_id`` in the registry CSV at ``path`` (no registry: None, no
    note). A missing patient or an unusable row is named in the notes, never passed over."""
    if path is None or not patient_id:
        return Admission(None)
    rows, errors = read_registry(path)
    row = next((r for r in rows if r.patient_id == patient_id), None)
    if row is not None:
        return Admission(row.icu_admission)
    bad = next((e for e in errors if e.patient_id == patient_id), None)
    if bad is not None:
        return Admission(None, (f"registry {path} line {bad.line} ({patient_id}) not used: {bad.reason}; "
                                "fix the row for the registry's ICU day",))
    return Admission(None, (f"{patient_id} is not in the registry {path}",))


@dataclass(frozen=True)
class SampleLogs:
    """The sample-log cells (``collected_at``, ``tube_type``, ``storage``) of a registry's rows by
    patient (the first row of a patient listed twice), read once for a whole batch."""

    cells: dict[str, dict[str, str]]

    @staticmethod
    def read(path: str | Path | None) -> "SampleLogs":
        """The sample logs of the registry at ``path`` (none without a registry)."""
        if path is None:
            return SampleLogs({})
        cells: dict[str, dict[str, str]] = {}
        for row in csv.DictReader(Path(path).read_text(encoding="utf-8-sig").splitlines()):
            pid = (row.get("patient_id") or "").strip()
            if pid and pid not in cells:
                cells[pid] = {k: (row.get(k) or "").strip() for k in ("collected_at", "tube_type", "storage")}
        return SampleLogs(cells)

    def of(self, patient_id: str | None, collection: date | None) -> tuple[SampleLog, tuple[str, ...]]:
        """The sample log of ``patient_id``'s screening sample, for a tube collected on
        ``collection``: ``collected_at`` is used only when its date is the tube's collection date
        (another day's draw is another sample), with a note when it is not."""
        cell = self.cells.get(patient_id or "")
        if cell is None:
            return SampleLog(), ()
        drawn: date | datetime | None = None
        notes: tuple[str, ...] = ()
        if cell["collected_at"]:
            try:
                drawn = parse_date_or_datetime(cell["collected_at"])
            except ValueError:
                notes = (f"registry collected_at {cell['collected_at']!r} of {patient_id} is not an ISO date or "
                         "date-time: not used",)
        if drawn is not None and collection is not None and as_date(drawn) != collection:
            notes = (f"registry collected_at {cell['collected_at']} of {patient_id} is another day than this "
                     f"tube's collection ({collection.isoformat()}): not used",)
            drawn = None
        return SampleLog(drawn, cell["tube_type"], cell["storage"]), notes


def import_registry(store: "Store", path: str | Path, *, actor: str = "registry",
                    today: date | None = None) -> tuple["ImportSummary", list[RowError]]:
    """Load a registry CSV into the store: good rows upserted (and their patients re-evaluated),
    bad rows returned. Re-importing the same file changes nothing and writes no audit entry."""
    rows, errors = read_registry(path)
    return store.patients.upsert(rows, actor=actor, today=today), errors
