"""Users, roles and passwords (pipeline.access, store.users) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pipeline.access import PERMISSIONS, ROLES, User, hash_password, roles_for, verify_password
from tests.store_fixtures import clock, db_url, settings, store  # noqa: F401


def test_passwords_are_salted_slow_hashes() -> None:
    first, second = hash_password("s3cret pass"), hash_password("s3cret pass")
    assert first != second and first.startswith("scrypt$16384$8$1$")     # a fresh salt each time
    assert "s3cret" not in first
    assert verify_password("s3cret pass", first) and verify_password("s3cret pass", second)
    assert not verify_password("s3cret pasS", first)
    assert not verify_password("s3cret pass", "md5$x") and not verify_password("x", "garbage")
    with pytest.raises(ValueError):
        hash_password("")


def test_every_action_names_known_roles_and_unblinding_is_its_own_role() -> None:
    assert all(roles <= set(ROLES) for roles in PERMISSIONS.values())
    assert roles_for("unblinded_read") == ("unblinded",)
    assert User("ann", "admin", True).may("users") and not User("ann", "admin", True).may("unblinded_read")
    assert not User("tom", "technician", False).may("review")      # disabled


def test_users_are_registered_authenticated_and_disabled(store) -> None:  # noqa: F811
    assert not store.users.any()
    store.users.add("ann", "admin", "correct horse", actor="setup")
    store.users.add("tom", "technician", "battery staple", actor="ann")
    assert store.users.any() and [u.name for u in store.users.list()] == ["ann", "tom"]
    assert store.users.authenticate("tom", "battery staple") == User("tom", "technician", True)
    assert store.users.authenticate("tom", "wrong") is None and store.users.authenticate("nobody", "x") is None
    with pytest.raises(ValueError, match="exists"):
        store.users.add("tom", "admin", "again", actor="ann")
    with pytest.raises(ValueError, match="unknown role"):
        store.users.add("eve", "root", "x", actor="ann")
    store.users.disable("tom", actor="ann")
    assert store.users.authenticate("tom", "battery staple") is None and not store.users.get("tom").active
    with pytest.raises(KeyError):
        store.users.disable("nobody", actor="ann")
    actions = [(e.actor, e.action, e.entity_id) for e in store.audit.entries()]
    assert actions == [("setup", "add_user", "ann"), ("ann", "add_user", "tom"), ("ann", "disable_user", "tom")]
    assert all("battery" not in str(e.after) and "scrypt" not in str(e.after) for e in store.audit.entries())
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE name = 'tom'")).scalar()
    assert stored.startswith("scrypt$") and "battery" not in stored
