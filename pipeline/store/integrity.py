"""Tamper evidence for every stored row: each write's audit entry carries the digest of the row
as the database holds it (:func:`row_ref`), and :func:`verify` compares every row of every
covered table with the last digest the audit trail recorded for it.

Covered: every table of the store except ``audit_log`` itself (files, calibrations,
measurements, review decisions, patients, screening decisions, users, outbox, signatures). What
:func:`verify` reports (EMA guideline on computerised systems and electronic data in clinical
trials, 2023, on audit trails; ICH E6(R3) on data governance):

- a break in the hash chain (an entry edited, removed, inserted or renumbered);
- a row whose content differs from its last audited digest (edited behind the application);
- an audited row that is gone (deleted);
- a row that no audit entry covers (inserted behind the application);
- a published head ``HASH@SEQ`` that the chain no longer contains (the chain was rewritten);
- an electronic signature whose record is gone or no longer matches the digest it signed
  (:mod:`pipeline.store.signatures`).

It needs no trigger: the triggers (migration 0004) refuse the obvious changes, the digests show
the rest. Rows are read without type conversion (:func:`raw_table`), so a value no column type
would accept is still read and reported, never a crash.

A migration that adds, drops or renames a column of a covered table changes every digest of that
table: it must call :func:`baseline` after the change (as 0004 does for the rows before it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from pipeline import audit as chain
from pipeline.store import models as m

COVERED: tuple[sa.Table, ...] = tuple(t for t in m.Base.metadata.sorted_tables if t.name != m.AuditLog.__tablename__)
ENTRY_COLUMNS = tuple(c for c in m.AuditLog.__table__.columns)
_BATCH = 2000


def raw_table(table: sa.Table, names: Iterable[str] | None = None) -> sa.TableClause:
    """``table`` with untyped columns: values come back as the driver returns them."""
    names = [c.name for c in table.columns] if names is None else list(names)
    return sa.table(table.name, *(sa.column(n) for n in names))


def key_column(table: sa.Table) -> str:
    """The name of the table's (single-column) primary key."""
    (pk,) = table.primary_key.columns
    return pk.name


@functools.cache
def _one_row(table: sa.Table) -> sa.Select[Any]:
    raw = raw_table(table)
    return select(raw).where(raw.c[key_column(table)] == sa.bindparam("key"))


def row_ref(bind: Session | Connection, table: sa.Table, key: Any) -> chain.RowRef:
    """The digest of one row as the database holds it now (in the caller's transaction)."""
    found = bind.execute(_one_row(table), {"key": key}).mappings().first()
    if found is None:
        raise LookupError(f"{table.name} {key}: no such row to audit")
    return chain.RowRef(table.name, str(key), chain.row_digest(found))


def _rows(bind: Session | Connection, table: sa.Table, names: Iterable[str] | None = None
          ) -> Iterator[tuple[str, str]]:
    """(key, digest) of every row of ``table``, streamed."""
    raw = raw_table(table, names)
    key = key_column(table)
    result = bind.execute(select(raw).order_by(raw.c[key]).execution_options(yield_per=_BATCH))
    for row in result.mappings():
        yield str(row[key]), chain.row_digest(row)


def entries(bind: Session | Connection) -> Iterator[chain.AuditEntry]:
    """The stored trail in ``seq`` order, streamed."""
    result = bind.execute(select(*ENTRY_COLUMNS).order_by(m.AuditLog.seq).execution_options(yield_per=_BATCH))
    for r in result:
        yield stored_entry(r)


def last_entry(bind: Session | Connection) -> chain.AuditEntry | None:
    """The chain's newest entry (None while the trail is empty)."""
    row = bind.execute(select(*ENTRY_COLUMNS).order_by(m.AuditLog.seq.desc()).limit(1)).first()
    return stored_entry(row) if row is not None else None


def stored_entry(r: Any) -> chain.AuditEntry:
    """An ``audit_log`` row (ORM object or result row) as an :class:`~pipeline.audit.AuditEntry`."""
    ref = chain.RowRef(r.row_table, r.row_key, r.row_digest) if r.row_table is not None else None
    return chain.AuditEntry(r.seq, r.at, r.actor, r.action, r.entity, r.entity_id, r.before, r.after,
                            r.prev_hash, r.hash, ref)


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: the chain's length and head, the rows compared, the problems
    (and, from ``Store.audit.verify``, the stored copies of the rules that no longer match their
    facts, :mod:`pipeline.store.derived`)."""

    entries: int
    rows: int
    head: str
    problems: tuple[chain.Problem, ...] = field(default_factory=tuple)
    derived: tuple[chain.StaleCopy, ...] = field(default_factory=tuple)   # each also one of ``problems``

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "rows": self.rows, "head": self.head,
                "problems": [p.as_dict() for p in self.problems], "derived": [d.as_dict() for d in self.derived]}


@dataclass(frozen=True)
class _Audited:
    digest: str
    seq: int
    action: str
    actor: str


def verify(bind: Session | Connection, published: tuple[str, int] | None = None) -> Verification:
    """Check the chain (against a published head, if given) and every covered row against its
    last audited digest; run it inside one snapshot (see ``Store.read(snapshot=True)``)."""
    checker = chain.ChainVerifier()
    last: dict[tuple[str, str], _Audited] = {}
    head_seen = published is None
    problems: list[chain.Problem] = []
    for entry in entries(bind):
        checker.feed(entry)
        if entry.row is not None:
            last[(entry.row.table, entry.row.key)] = _Audited(entry.row.digest, entry.seq, entry.action, entry.actor)
        if published is not None and entry.seq == published[1]:
            head_seen = True
            if entry.hash != published[0]:
                problems.append(chain.Problem(chain.AUDIT_TABLE, str(entry.seq),
                                              f"hash differs from the published head {published[0]}@{published[1]} "
                                              "(the chain was rewritten)"))
    if not head_seen and published is not None:
        problems.append(chain.Problem(chain.AUDIT_TABLE, str(published[1]),
                                      f"the published head {published[0]}@{published[1]} is past the end of the "
                                      f"chain ({checker.count} entries: entries were removed)"))
    problems[:0] = checker.problems
    rows = 0
    for table in COVERED:
        seen: set[str] = set()
        for key, digest in _rows(bind, table):
            rows += 1
            seen.add(key)
            audited = last.get((table.name, key))
            if audited is None:
                problems.append(chain.Problem(table.name, key, "no audit entry covers this row "
                                                               "(inserted behind the application)"))
            elif audited.digest != digest:
                problems.append(chain.Problem(table.name, key, "content differs from its last audited state "
                                                               f"(entry {audited.seq}, {audited.action} by "
                                                               f"{audited.actor}): edited behind the application"))
        for (name, key), audited in last.items():
            if name == table.name and key not in seen:
                problems.append(chain.Problem(name, key, f"gone: last audited by entry {audited.seq} "
                                                         f"({audited.action} by {audited.actor}), deleted since"))
    return Verification(checker.count, rows, chain.head_text(checker.head), tuple(problems))


def baseline(conn: Connection, actor: str, action: str, at: datetime, tables: Iterable[str] | None = None) -> int:
    """Append one audit entry per row of every covered table (or of ``tables``), carrying the
    row's digest as it is now (for rows written before row digests existed, or after a migration
    changed a table's columns). Reads only the columns the database has. Returns the entries written."""
    prev = last_entry(conn)
    existing = sa.inspect(conn)
    written = 0
    for table in COVERED:
        if not existing.has_table(table.name) or (tables is not None and table.name not in tables):
            continue
        names = {c["name"] for c in existing.get_columns(table.name)}
        for key, digest in list(_rows(conn, table, [c.name for c in table.columns if c.name in names])):
            prev = chain.make_entry(prev, at, actor, action, table.name, key, None, None,
                                    chain.RowRef(table.name, key, digest))
            conn.execute(sa.insert(m.AuditLog.__table__).values(**entry_columns(prev)))
            written += 1
    return written


def entry_columns(entry: chain.AuditEntry) -> dict[str, Any]:
    """The ``audit_log`` columns of an entry."""
    row = entry.row
    return {"seq": entry.seq, "at": entry.at, "actor": entry.actor, "action": entry.action, "entity": entry.entity,
            "entity_id": entry.entity_id, "before": entry.before, "after": entry.after,
            "prev_hash": entry.prev_hash, "hash": entry.hash,
            "row_table": row.table if row else None, "row_key": row.key if row else None,
            "row_digest": row.digest if row else None}
