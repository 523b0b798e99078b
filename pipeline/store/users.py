"""The people registered to use the system (see :mod:`pipeline.access`); every change audited,
passwords never leave this module except as their hash."""

from __future__ import annotations

from sqlalchemy import func, select

from pipeline.access import ROLES, User, hash_password, roles_for, verify_password
from pipeline.store import models as m
from pipeline.store.tx import Transactions


def user(row: m.User) -> User:
    return User(row.name, row.role, row.active)


class Users:
    """The ``users`` table."""

    def __init__(self, store: Transactions) -> None:
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
            tx.save(row, "add_user", "user", None, {"name": name, "role": role, "active": True}, entity_id=name)
            return user(row)

    def disable(self, name: str, *, actor: str) -> User:
        """Switch a person off (kept for the audit trail); raises ``KeyError`` when unknown and
        ``ValueError`` for the last active admin (no one could manage users any more)."""
        with self.store.write(actor) as tx:
            row = tx.session.scalars(select(m.User).where(m.User.name == name)).first()
            if row is None:
                raise KeyError(name)
            if row.active and row.role == "admin" and tx.session.scalar(
                    select(func.count()).select_from(m.User).where(m.User.role == "admin", m.User.active)) == 1:
                raise ValueError(f"{name} is the last active admin; register another admin first")
            if row.active:
                row.active, row.updated = False, tx.now()
                tx.save(row, "disable_user", "user", {"active": True}, {"active": False}, entity_id=name)
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

    def refusal(self, name: str, action: str) -> str | None:
        """Why ``name`` may not take ``action`` (:data:`pipeline.access.PERMISSIONS`), e.g. "needs
        the role technician or admin; bob is investigator"; None when allowed, and always while
        no one is registered (single-user mode)."""
        if not self.any():
            return None
        person = self.get(name)
        needs = f"needs the role {' or '.join(roles_for(action))}"
        if person is None:
            return f"{needs}; {name} is not a registered user (an admin registers people with `mhladr users add`)"
        if not person.active:
            return f"{needs}; {name} is disabled"
        return None if person.may(action) else f"{needs}; {name} is {person.role}"

    def authenticate(self, name: str, password: str) -> User | None:
        """The active user with this name and password, else None (the same cost either way)."""
        with self.store.read() as s:
            row = s.scalars(select(m.User).where(m.User.name == name)).first()
        stored = row.password_hash if row is not None else _DUMMY
        ok = verify_password(password, stored)
        return user(row) if ok and row is not None and row.active else None


_DUMMY = hash_password("not a password: keeps an unknown name as slow as a wrong password")
