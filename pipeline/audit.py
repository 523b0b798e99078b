"""Hash-chained audit trail: canonical JSON, entry hashes, row digests and chain verification.

Each entry's hash is SHA-256 over the canonical JSON (sorted keys, no insignificant whitespace,
UTF-8; in the spirit of RFC 8785) of its content plus the previous entry's hash, so editing,
inserting or deleting an entry breaks every later link (a hash chain as in RFC 6962's
append-only logs). Entries are numbered 1, 2, 3, ... without gaps; a gap reveals a deletion.

An entry that records a write of a stored row also carries a :class:`RowRef`: the row's table,
primary key and :func:`row_digest` (SHA-256 of the row's columns as the database returns them),
so a row changed behind the application's back no longer matches its last audited digest
(``pipeline.store.integrity`` compares them). Entries written before row digests existed have
no ``row``; their hash is computed exactly as before.

The chain's head (``HASH@SEQ``, :func:`head_text`) is what to publish: a chain rewritten from
the start verifies on its own, but not against a head published earlier (:func:`parse_head`).
Pure functions: the store persists entries, these compute and check them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable, Mapping

GENESIS_HASH = "0" * 64
AUDIT_TABLE = "audit_log"


@dataclass(frozen=True)
class RowRef:
    """The stored row an entry covers: its table, primary key (as text) and content digest."""

    table: str
    key: str
    digest: str


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as stored (``before``/``after`` are JSON-compatible or None)."""

    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: Any
    after: Any
    prev_hash: str
    hash: str
    row: RowRef | None = None


@dataclass(frozen=True)
class Problem:
    """One finding of a verification: which table and row, and what is wrong with it."""

    table: str
    row: str
    what: str

    def as_dict(self) -> dict[str, str]:
        return {"table": self.table, "row": self.row, "what": self.what}

    def __str__(self) -> str:
        return f"{self.table} {self.row}: {self.what}"


@dataclass(frozen=True)
class StaleCopy:
    """A stored copy of a rule's outcome that differs from what the rule derives from the stored
    facts beside it: the row (``table``, ``row``), the result it belongs to (``measurement_id``,
    ``version``: 1 for the first, None for a row that is not a version), its file's name, the
    ``column``, the ``stored`` and ``derived`` values and the facts they were derived from."""

    table: str
    row: str
    measurement_id: int
    version: int | None
    file: str
    column: str
    stored: Any
    derived: Any
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row, "measurement_id": self.measurement_id,
                "version": self.version, "file": self.file, "column": self.column,
                "stored": self.stored, "derived": self.derived, "basis": self.basis}

    def problem(self) -> Problem:
        """The same finding in the shape of every other integrity problem."""
        return Problem(self.table, self.row, f"{self.column} is {_shown(self.stored)} but {self.basis} give "
                                             f"{_shown(self.derived)} ({self.file}, result m{self.measurement_id}"
                                             f"{'' if self.version is None else f' version {self.version}'}): "
                                             "a stored copy that no longer matches its facts")


def _shown(value: Any) -> str:
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class ChainCheck:
    """Result of :func:`verify_chain`: ``ok``, the entries read, the problems, the last entry."""

    ok: bool
    entries: int
    problems: tuple[Problem, ...]
    head: AuditEntry | None = None


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, compact separators, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_default)


def jsonable(value: Any) -> Any:
    """``value`` round-tripped through canonical JSON (dates become ISO strings)."""
    return json.loads(canonical_json(value))


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, e.g. ``2026-03-12T08:00:00.000000+00:00``."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _plain(value: Any) -> Any:
    """A database value as canonical-JSON-able data: non-finite floats as text, naive
    date-times (SQLite) in ISO form, bytes in hex; containers element by element."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat(timespec="microseconds")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def row_digest(values: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a row's columns as the database driver returns them (name -> value).

    The digest is computed from what is read back, never from what was meant to be written, so
    the write and every later verification hash the same bytes on the same backend.
    """
    row = dict(values)
    try:
        text = canonical_json(row)
    except (ValueError, TypeError):     # NaN/inf, naive date-times, bytes: made plain first (same text otherwise)
        text = canonical_json(_plain(row))
    return text_digest(text)


def text_digest(text: str) -> str:
    """SHA-256 (hex; FIPS 180-4) of a text's UTF-8 bytes: the one digest of JSON content (rows,
    audit entries, exported results)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def json_digest(value: Any) -> str:
    """:func:`text_digest` of ``value``'s canonical JSON."""
    return text_digest(canonical_json(value))


def entry_hash(seq: int, at: datetime, actor: str, action: str, entity: str, entity_id: str,
               before: Any, after: Any, prev_hash: str, row: RowRef | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's content and its predecessor's hash."""
    body = {
        "seq": seq, "at": utc_iso(at), "actor": actor, "action": action, "entity": entity,
        "entity_id": entity_id, "before": before, "after": after, "prev_hash": prev_hash,
    }
    if row is not None:
        body["row"] = {"table": row.table, "key": row.key, "digest": row.digest}
    return json_digest(body)


def make_entry(prev: AuditEntry | None, at: datetime, actor: str, action: str, entity: str,
               entity_id: str, before: Any, after: Any, row: RowRef | None = None) -> AuditEntry:
    """The entry that follows ``prev`` (or starts the chain)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    before, after = jsonable(before), jsonable(after)
    digest = entry_hash(seq, at, actor, action, entity, entity_id, before, after, prev_hash, row)
    return AuditEntry(seq, at, actor, action, entity, entity_id, before, after, prev_hash, digest, row)


class ChainVerifier:
    """Checks numbering, links and hashes of entries fed in ``seq`` order, one at a time (the
    trail can be streamed instead of loaded whole)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.count = 0
        self.head: AuditEntry | None = None
        self._expected_seq, self._prev_hash = 1, GENESIS_HASH

    def feed(self, entry: AuditEntry) -> None:
        self.count += 1
        row = str(entry.seq)
        if entry.seq != self._expected_seq:
            self.problems.append(Problem(AUDIT_TABLE, row, f"expected entry {self._expected_seq} here "
                                                           "(entries missing or renumbered)"))
        if entry.prev_hash != self._prev_hash:
            self.problems.append(Problem(AUDIT_TABLE, row, "does not link to the previous entry's hash"))
        recomputed = entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.entity, entry.entity_id,
                                entry.before, entry.after, entry.prev_hash, entry.row)
        if recomputed != entry.hash:
            self.problems.append(Problem(AUDIT_TABLE, row, "content does not match its hash (edited)"))
        self._expected_seq, self._prev_hash = entry.seq + 1, entry.hash
        self.head = entry

    def result(self) -> ChainCheck:
        return ChainCheck(ok=not self.problems, entries=self.count, problems=tuple(self.problems), head=self.head)


def verify_chain(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Check numbering, links and hashes of entries given in ``seq`` order."""
    verifier = ChainVerifier()
    for entry in entries:
        verifier.feed(entry)
    return verifier.result()


def head_text(entry: AuditEntry | None) -> str:
    """The publishable head of a chain: ``HASH@SEQ`` (the genesis hash at 0 for an empty chain)."""
    return f"{GENESIS_HASH}@0" if entry is None else f"{entry.hash}@{entry.seq}"


def parse_head(text: str) -> tuple[str, int]:
    """``HASH@SEQ`` -> (hash, seq); raises ``ValueError`` for anything else."""
    found = re.fullmatch(r"\s*([0-9a-fA-F]{64})@(\d+)\s*", text)
    if found is None:
        raise ValueError(f"{text!r} is not a chain head (HASH@SEQ: 64 hex digits, '@', an entry number)")
    return found.group(1).lower(), int(found.group(2))
