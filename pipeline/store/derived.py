"""The stored copies of the per-result rules, derived again and checked (issue 20: "where a stored
copy is kept, it is derived and checked, never a second truth").

A measurement row keeps its ICU day, window and cut-off as columns (``icu_day``, ``in_window``,
``below_threshold``), a later version its cut-off, a screening decision the ICU day of the result
it rests on. The writers derive these copies from the facts beside them with
:func:`pipeline.store.measurements.copies` (:func:`pipeline.eligibility.result_rules`);
:func:`stale_copies` derives each again with the same call from the stored facts as they were when
the row was written: the patient's registry admission then (the ``after`` of the last
``upsert_patient`` audit entry before the row's own), the collection date, AB/C and QC, and the
rules in force. A registry admission changed later leaves the copy as written (readers derive the
ICU day from the registry as it is now; :func:`pipeline.store.measurements.stored`): no finding.
Without a registry row when written, the ICU day came from the file's keyword, which is not stored:
the row's own day is taken as given (``known_day``, as the writer did) and its window checked.
A row whose write entry is a migration's baseline (written before row digests) is checked without
the registry, and such a screening decision not at all: when it was written is unknown.

Values are read as the driver returns them (:func:`pipeline.store.integrity.raw_table`), so a row
holding what no column type accepts is skipped here, never a crash (the row check names it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.audit import StaleCopy
from pipeline.eligibility import Rules, icu_day, parse_date_or_datetime
from pipeline.store import integrity
from pipeline.store import models as m
from pipeline.store.measurements import copies

# The writers' audit actions of the checked rows; any other first entry (a baseline) leaves the
# moment of writing unknown.
WRITTEN_BY = {"measurements": "store_measurement", "screening_decisions": "screening_decision"}


@dataclass(frozen=True)
class _Result:
    """What a version or a screening decision needs of its measurement row."""

    file: str
    collection: date


class _Registry:
    """Each patient's ICU admission over the audit trail's sequence (ISO text as stored)."""

    def __init__(self, s: Session) -> None:
        self._seqs: dict[str, list[int]] = {}
        self._values: dict[str, list[str | None]] = {}
        query = (select(m.AuditLog.seq, m.AuditLog.entity_id, m.AuditLog.after)
                 .where(m.AuditLog.action == "upsert_patient").order_by(m.AuditLog.seq))
        for seq, patient_id, after in s.execute(query):
            if isinstance(after, dict):
                self._seqs.setdefault(patient_id, []).append(seq)
                self._values.setdefault(patient_id, []).append(after.get("icu_admission"))

    def at(self, patient_id: str, seq: int | None) -> str | None:
        """The admission the registry gave just before entry ``seq`` (None: no row then, or ``seq``
        unknown)."""
        if seq is None:
            return None
        i = bisect.bisect_left(self._seqs.get(patient_id, []), seq)
        return self._values[patient_id][i - 1] if i else None


def _written(s: Session) -> dict[tuple[str, str], int | None]:
    """(table, key) -> the seq of the writer's entry of each checked row (None: first audited by
    a baseline)."""
    query = (select(m.AuditLog.row_table, m.AuditLog.row_key, m.AuditLog.seq, m.AuditLog.action)
             .where(m.AuditLog.row_table.in_(WRITTEN_BY)).order_by(m.AuditLog.seq))
    found: dict[tuple[str, str], int | None] = {}
    for table, key, seq, action in s.execute(query):
        found.setdefault((table, key), seq if action == WRITTEN_BY[table] else None)
    return found


def _raw(s: Session, table: sa.Table, names: tuple[str, ...]) -> Iterator[Mapping[str, Any]]:
    raw = integrity.raw_table(table, names)
    yield from s.execute(select(raw).order_by(raw.c[names[0]])).mappings()


def _day(value: Any) -> date:
    """A stored date (SQLite returns ISO text); ``ValueError`` for anything else."""
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise ValueError(f"not a date: {value!r}")


def _flag(value: Any) -> bool | None:
    """A stored boolean (SQLite returns 0/1); ``ValueError`` for anything else."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


def _whole(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"not an integer: {value!r}")


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise ValueError(f"not a number: {value!r}")


def _cut_off(abc: float | None, qc_status: str, rules: Rules) -> str:
    value = "no AB/C" if abc is None else f"AB/C {abc:,.0f}"
    return f"{value} with QC {qc_status} and the cut-off {rules.abc_threshold:,.0f}"


def stale_copies(s: Session, rules: Rules) -> list[StaleCopy]:
    """Every stored copy of a rule's outcome that differs from what the rule derives from the
    stored facts when its row was written (module docstring); run it in the same snapshot as the
    row check (``Store.read(snapshot=True)``). Measurements, then versions, then screening
    decisions, each by id."""
    registry, written = _Registry(s), _written(s)
    results: dict[int, _Result] = {}
    found = list(_measurements(s, rules, registry, written, results))
    found += _versions(s, rules, results)
    found += _decisions(s, registry, written, results)
    return found


def _measurements(s: Session, rules: Rules, registry: _Registry, written: dict[tuple[str, str], int | None],
                  results: dict[int, _Result]) -> Iterator[StaleCopy]:
    """The ICU day, window and cut-off copies of each measurement row (its first version); fills
    ``results`` for the rows that refer to it."""
    originals = select(m.File.sha256, m.File.path).where(m.File.status != "duplicate")
    paths = {sha: path for sha, path in s.execute(originals)}
    names = ("id", "file_sha256", "patient_id", "collection_date", "icu_day", "in_window", "abc", "qc_status",
             "below_threshold")
    for row in _raw(s, m.Measurement.__table__, names):
        try:
            mid, collection, abc = int(row["id"]), _day(row["collection_date"]), _number(row["abc"])
            stored = {"icu_day": _whole(row["icu_day"]), "in_window": _flag(row["in_window"]),
                      "below_threshold": _flag(row["below_threshold"])}
        except (TypeError, ValueError):
            continue
        qc = str(row["qc_status"])
        file = Path(paths.get(row["file_sha256"]) or str(row["file_sha256"])[:12]).name
        results[mid] = _Result(file, collection)
        admission = registry.at(str(row["patient_id"]), written.get(("measurements", str(mid))))
        facts = copies(admission, collection, abc, qc, rules, known_day=stored["icu_day"])
        basis = {
            "icu_day": f"the collection date {collection.isoformat()} and the registry's ICU admission "
                       f"{admission} when it was stored",
            "in_window": f"ICU day {facts.icu_day} and the window (days {rules.window_first_day}-"
                         f"{rules.window_last_day})",
            "below_threshold": _cut_off(abc, qc, rules),
        }
        for column, value in stored.items():
            if value != getattr(facts, column):
                yield StaleCopy("measurements", str(mid), mid, 1, file, column, value, getattr(facts, column),
                                basis[column])


def _versions(s: Session, rules: Rules, results: dict[int, _Result]) -> Iterator[StaleCopy]:
    """The cut-off copy of each later version (a gate correction)."""
    names = ("id", "measurement_id", "version", "abc", "qc_status", "below_threshold")
    for row in _raw(s, m.MeasurementVersion.__table__, names):
        try:
            mid, abc, stored = int(row["measurement_id"]), _number(row["abc"]), _flag(row["below_threshold"])
        except (TypeError, ValueError):
            continue
        qc = str(row["qc_status"])
        derived = copies(None, None, abc, qc, rules, known_day=None).below_threshold
        if stored != derived:
            result = results.get(mid)
            yield StaleCopy("measurement_versions", str(row["id"]), mid, row["version"],
                            result.file if result else "-", "below_threshold", stored, derived,
                            _cut_off(abc, qc, rules))


def _decisions(s: Session, registry: _Registry, written: dict[tuple[str, str], int | None],
               results: dict[int, _Result]) -> Iterator[StaleCopy]:
    """The ICU day a screening decision shows of the result it rests on, as
    :func:`pipeline.eligibility.evaluate` gave it from the registry's admission when it decided."""
    for row in _raw(s, m.ScreeningDecision.__table__, ("id", "patient_id", "measurement_id", "icu_day")):
        key, mid = str(row["id"]), row["measurement_id"]
        result = results.get(mid) if isinstance(mid, int) else None
        seq = written.get(("screening_decisions", key))
        if result is None or seq is None:
            continue
        admission = registry.at(str(row["patient_id"]), seq)
        derived = icu_day(parse_date_or_datetime(admission), result.collection) if admission else None
        if row["icu_day"] != derived:
            yield StaleCopy("screening_decisions", key, mid, None, result.file, "icu_day", row["icu_day"], derived,
                            f"the collection date {result.collection.isoformat()} of its result and the "
                            f"registry's ICU admission {admission} when it was decided")
