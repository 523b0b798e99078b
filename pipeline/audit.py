"""Hash-chained audit trail: canonical JSON, entry hashes and chain verification.

Each entry's hash is SHA-256 over the canonical JSON (sorted keys, no insignificant whitespace,
UTF-8; in the spirit of RFC 8785) of its content plus the previous entry's hash, so editing,
inserting or deleting an entry breaks every later link (a hash chain as in RFC 6962's
append-only logs). Entries are numbered 1, 2, 3, ... without gaps; a gap reveals a deletion.
Pure functions: the store persists entries, these compute and check them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable

GENESIS_HASH = "0" * 64


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


@dataclass(frozen=True)
class ChainCheck:
    """Result of :func:`verify_chain`: ``ok`` and one message per broken link."""

    ok: bool
    entries: int
    problems: tuple[str, ...]


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


def entry_hash(seq: int, at: datetime, actor: str, action: str, entity: str, entity_id: str,
               before: Any, after: Any, prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's content and its predecessor's hash."""
    body = {
        "seq": seq, "at": utc_iso(at), "actor": actor, "action": action, "entity": entity,
        "entity_id": entity_id, "before": before, "after": after, "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def make_entry(prev: AuditEntry | None, at: datetime, actor: str, action: str, entity: str,
               entity_id: str, before: Any, after: Any) -> AuditEntry:
    """The entry that follows ``prev`` (or starts the chain)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    before, after = jsonable(before), jsonable(after)
    digest = entry_hash(seq, at, actor, action, entity, entity_id, before, after, prev_hash)
    return AuditEntry(seq, at, actor, action, entity, entity_id, before, after, prev_hash, digest)


def verify_chain(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Check numbering, links and hashes of entries given in ``seq`` order."""
    problems: list[str] = []
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            problems.append(f"entry {entry.seq}: expected entry {expected_seq} (entries missing)")
        if entry.prev_hash != prev_hash:
            problems.append(f"entry {entry.seq}: does not link to the previous entry's hash")
        recomputed = entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.entity,
                                entry.entity_id, entry.before, entry.after, entry.prev_hash)
        if recomputed != entry.hash:
            problems.append(f"entry {entry.seq}: content does not match its hash (edited)")
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return ChainCheck(ok=not problems, entries=count, problems=tuple(problems))
