"""The people registered to use the system (see :mod:`pipeline.access`); every change audited,
passwords never leave this module except as their hash."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import func, select

from pipeline.access import ROLES, User, hash_password, name_problem, roles_for, verify_password
from pipeline.store import models as m
from pipeline.store.tx import Transactions


def user(row: m.User) -> User:
    return User(row.name, row.role, row.active, row.session_generation or 0)


def _named(name: str) -> Any:
    """The row of ``name`` without regard to case (names are unique that way)."""
    return select(m.User).where(func.lower(m.User.name) == name.strip().lower())


class Users:
    """The ``users`` table."""

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def add(self, name: str, role: str, password: str, *, actor: str) -> User:
        """Register a person; raises ``ValueError`` for a bad or taken name (without regard to case)
        or an unknown role."""
        problem = name_problem(name)
        if problem:
            raise ValueError(problem)
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        digest = hash_password(password)
        with self.store.write(actor) as tx:
            taken = tx.session.scalars(_named(name)).first()
            if taken is not None:
                raise ValueError(f"user {name!r} exists already" if taken.name == name
                                 else f"user {name!r} exists already as {taken.name!r} (names ignore case)")
            now = tx.now()
            row = m.User(name=name, role=role, password_hash=digest, active=True, created=now, updated=now,
                         session_generation=0)
            tx.save(row, "add_user", "user", None, {"name": name, "role": role, "active": True}, entity_id=name)
            return user(row)

    def disable(self, name: str, *, actor: str) -> User:
        """Switch a person off (kept for the audit trail); raises ``KeyError`` when unknown and
        ``ValueError`` for the last active admin (no one could manage users any more)."""
        with self.store.write(actor) as tx:
            row = tx.session.scalars(_named(name)).first()
            if row is None:
                raise KeyError(name)
            if row.active and row.role == "admin" and tx.session.scalar(
                    select(func.count()).select_from(m.User).where(m.User.role == "admin", m.User.active)) == 1:
                raise ValueError(f"{name} is the last active admin; register another admin first")
            if row.active:
                row.active, row.updated = False, tx.now()
                row.session_generation = (row.session_generation or 0) + 1
                tx.save(row, "disable_user", "user", {"active": True}, {"active": False}, entity_id=row.name)
            return user(row)

    def enable(self, name: str, *, actor: str) -> User:
        """Switch a disabled person on again (console sessions from before stay over); raises
        ``KeyError`` when unknown."""
        with self.store.write(actor) as tx:
            row = tx.session.scalars(_named(name)).first()
            if row is None:
                raise KeyError(name)
            if not row.active:
                row.active, row.updated = True, tx.now()
                row.session_generation = (row.session_generation or 0) + 1
                tx.save(row, "enable_user", "user", {"active": False}, {"active": True}, entity_id=row.name)
            return user(row)

    def set_password(self, name: str, password: str, *, actor: str) -> User:
        """Replace a person's password (audited without it or its hash); every console session of
        theirs ends. Raises ``KeyError`` when unknown."""
        digest = hash_password(password)
        with self.store.write(actor) as tx:
            row = tx.session.scalars(_named(name)).first()
            if row is None:
                raise KeyError(name)
            row.password_hash, row.updated = digest, tx.now()
            row.session_generation = (row.session_generation or 0) + 1
            tx.save(row, "change_password", "user", None, {"sessions_ended": True}, entity_id=row.name)
            return user(row)

    def end_sessions(self, name: str, *, actor: str, details: dict[str, Any] | None = None) -> None:
        """Sign a person out of every console session (it holds across restarts); audited as
        ``logout`` with ``details`` (e.g. the client address)."""
        with self.store.write(actor) as tx:
            row = tx.session.scalars(_named(name)).first()
            if row is None:
                raise KeyError(name)
            before = row.session_generation or 0
            row.session_generation = before + 1
            tx.save(row, "logout", "session", {"session_generation": before},
                    {**(details or {}), "session_generation": before + 1}, entity_id=row.name)

    def get(self, name: str) -> User | None:
        with self.store.read() as s:
            row = s.scalars(_named(name)).first()
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
            row = s.scalars(_named(name)).first()
        stored = row.password_hash if row is not None else _dummy()
        ok = verify_password(password, stored)
        return user(row) if ok and row is not None and row.active else None


@cache
def _dummy() -> str:
    """A hash to check an unknown name against, made once per process on the first sign-in (not
    at import: ~0.07 s of CPU that every command loading the store would pay)."""
    return hash_password("not a password: keeps an unknown name as slow as a wrong password")
