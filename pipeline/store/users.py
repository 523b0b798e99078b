"""The people registered to use the system (see :mod:`pipeline.access`); every change audited,
passwords never leave this module except as their hash."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from pipeline.access import ROLES, User, hash_password, verify_password
from pipeline.store import models as m

if TYPE_CHECKING:
    from pipeline.store.hub import Store


def user(row: m.User) -> User:
    return User(row.name, row.role, row.active)


class Users:
    """The ``users`` table."""

    def __init__(self, store: "Store") -> None:
        self.store = store

    def add(self, name: str, role: str, password: str, *, actor: str) -> User:
        """Register a person; raises ``ValueError`` for a taken name, an unknown role or an empty password."""
        name = name.strip()
        if not name:
            raise ValueError("a user needs a name")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        digest = hash_password(password)
        with self.store.write(actor) as tx:
            if tx.session.scalar(select(m.User.id).where(m.User.name == name)) is not None:
                raise ValueError(f"user {name!r} exists already")
            now = tx.now()
            row = m.User(name=name, role=role, password_hash=digest, active=True, created=now, updated=now)
            tx.session.add(row)
            tx.session.flush()
            tx.audit("add_user", "user", name, None, {"name": name, "role": role, "active": True})
            return user(row)

    def disable(self, name: str, *, actor: str) -> User:
        """Switch a person off (kept for the audit trail); raises ``KeyError`` when unknown."""
        with self.store.write(actor) as tx:
            row = tx.session.scalars(select(m.User).where(m.User.name == name)).first()
            if row is None:
                raise KeyError(name)
            if row.active:
                row.active, row.updated = False, tx.now()
                tx.session.flush()
                tx.audit("disable_user", "user", name, {"active": True}, {"active": False})
            return user(row)

    def get(self, name: str) -> User | None:
        with self.store.read() as s:
            row = s.scalars(select(m.User).where(m.User.name == name)).first()
            return user(row) if row is not None else None

    def list(self) -> list[User]:
        with self.store.read() as s:
            return [user(r) for r in s.scalars(select(m.User).order_by(m.User.name))]

    def any(self) -> bool:
        """Whether anyone is registered (none: the embedded single-user mode)."""
        with self.store.read() as s:
            return bool(s.scalar(select(func.count()).select_from(m.User)))

    def authenticate(self, name: str, password: str) -> User | None:
        """The active user with this name and password, else None (the same cost either way)."""
        with self.store.read() as s:
            row = s.scalars(select(m.User).where(m.User.name == name)).first()
        stored = row.password_hash if row is not None else _DUMMY
        ok = verify_password(password, stored)
        return user(row) if ok and row is not None and row.active else None


_DUMMY = hash_password("not a password: keeps an unknown name as slow as a wrong password")
