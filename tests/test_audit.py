"""Hash-chained audit trail: pure chain checks, and the stored trail's append-only guard."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from pipeline.audit import GENESIS_HASH, canonical_json, make_entry, verify_chain
from tests.store_fixtures import clock, db_url, settings, sha, store  # noqa: F401

T = datetime(2026, 3, 1, tzinfo=timezone.utc)


def chain_of(n: int):
    entries, prev = [], None
    for i in range(n):
        prev = make_entry(prev, T + timedelta(seconds=i), "tech", "act", "file", str(i), {"v": i}, {"v": i + 1})
        entries.append(prev)
    return entries


def test_canonical_json_is_key_order_independent():
    assert canonical_json({"b": 1, "a": [1.5, None]}) == canonical_json({"a": [1.5, None], "b": 1})
    assert canonical_json({"d": date(2026, 3, 1)}) == '{"d":"2026-03-01"}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_intact_chain_verifies():
    entries = chain_of(5)
    assert entries[0].prev_hash == GENESIS_HASH
    check = verify_chain(entries)
    assert check.ok and check.entries == 5 and check.problems == ()


def test_edit_is_detected():
    entries = chain_of(5)
    entries[2] = dataclasses.replace(entries[2], after={"v": 999})
    check = verify_chain(entries)
    assert not check.ok and [p.as_dict() for p in check.problems] == [
        {"table": "audit_log", "row": "3", "what": "content does not match its hash (edited)"}]


def test_deletion_is_detected():
    entries = chain_of(5)
    del entries[1]
    check = verify_chain(entries)
    assert not check.ok and any(p.row == "3" and "missing" in p.what for p in check.problems)


def test_rehashed_edit_still_breaks_the_next_link():
    entries = chain_of(4)
    forged = make_entry(entries[0], entries[1].at, "intruder", "act", "file", "1", None, None)
    entries[1] = forged
    check = verify_chain(entries)
    assert not check.ok and [(p.row, p.what) for p in check.problems] == [
        ("3", "does not link to the previous entry's hash")]


def test_naive_time_is_refused():
    with pytest.raises(ValueError):
        make_entry(None, datetime(2026, 3, 1), "a", "b", "c", "d", None, None)


def _write_some(store):
    for i in range(3):
        store.files.record(sha(i), f"/in/{i}.fcs", 10, "sample", "pending_calibration")
    store.files.update(sha(1), "rejected", ["truncated"])


def test_store_trail_is_append_only(store):
    _write_some(store)
    assert store.audit.verify_chain().ok
    for statement in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(Exception, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
    assert len(store.audit.entries()) == 4 and store.audit.verify_chain().ok


def _bypass_guard(conn) -> None:
    """What an intruder with DDL rights would do: switch the guard off."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    else:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))


@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_store_verification_detects_tampering_behind_the_guard(store, tamper):
    _write_some(store)
    with store.engine.begin() as conn:
        _bypass_guard(conn)
        if tamper == "edit":
            conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
        else:
            conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    check = store.audit.verify_chain()
    assert not check.ok
    assert any(("edited" if tamper == "edit" else "missing") in p.what for p in check.problems)


def test_every_write_audits_itself_with_actor_and_utc_time(store, clock):
    store.files.record(sha(1), "/in/a.fcs", 10, "sample", "pending_calibration", actor="watcher")
    entry = store.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.entity, entry.entity_id) == ("watcher", "record_file", "file", sha(1))
    assert entry.before is None and entry.after["path"] == "/in/a.fcs"
    assert entry.at == clock.now and entry.at.utcoffset() == timedelta(0)


def test_row_digest_is_order_free_and_reads_any_driver_value():
    from pipeline.audit import row_digest
    aware = datetime(2026, 3, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    assert row_digest({"a": 1, "at": aware}) == row_digest({"at": aware.astimezone(timezone.utc), "a": 1})
    assert row_digest({"a": 1}) != row_digest({"a": 1.0}) != row_digest({"a": "1"})
    odd = {"x": float("inf"), "naive": datetime(2026, 3, 1), "raw": b"\x00\x01", "nested": {"y": [float("nan")]}}
    assert len(row_digest(odd)) == 64 and row_digest(odd) == row_digest(dict(reversed(list(odd.items()))))
    assert row_digest(odd) != row_digest({**odd, "x": float("-inf")})
