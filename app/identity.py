"""Who is acting on the command line: the operating-system account of the process's real uid
(:func:`os_account`, ``pwd.getpwuid(os.getuid())``; never ``LOGNAME``/``USER``, which anyone can set), which
must be a registered, active user whose role may take the command's action
(:data:`pipeline.access.PERMISSIONS`, checked by ``store.users.refusal``).

While no one is registered (a fresh embedded install, ``make demo``) the command line runs in
single-user mode: no role is checked and the actor is ``--actor NAME`` or the login. Once users
exist, ``--actor NAME`` is only for an admin's scripts: the named user must be registered and
hold the role, the action is recorded under that name, and an ``act_as`` audit entry names the
admin who ran it.

:data:`COMMAND_ACTIONS` is the role matrix of every command that touches the results database,
except ``audit verify``, which anyone may run: it shows no clinical value, and a check of the
stored rows cannot depend on the ``users`` rows it checks (an intruder who demoted every admin
would otherwise silence it).
"""

from __future__ import annotations

import argparse
import os
import pwd
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.access import FORBIDDEN
from pipeline.errors import InputError

if TYPE_CHECKING:
    from pipeline.store import Store

# command -> the action it takes (pipeline.access.PERMISSIONS says which roles may).
COMMAND_ACTIONS: dict[str, str] = {
    "run": "process",
    "watch": "process",
    "serve": "process",
    "reprocess": "reprocess",
    "review list": "review",
    "review approve": "review",
    "review reject": "review",
    "review regate": "review",
    "patients import": "import_registry",
    "screening": "screening",
    "screening --unblinded": "unblinded_read",
    "results": "screening",
    "results --unblinded": "unblinded_read",
    "export": "export",
    "export --unblinded": "unblinded_read",
    "users add": "users",
    "users list": "users",
    "users disable": "users",
    "users enable": "users",
    "users passwd": "users",            # or the person themself (app.commands.users)
    "audit report": "audit_review",
    "validate": "audit_review",
}

SINGLE_USER_NOTE = ("Single-user mode: until someone is registered with `mhladr users add`, every command runs "
                    "as the operating-system account without role checks; once users exist, the login must be a "
                    "registered user whose role may run the command (README: Records, users and roles).")


def os_account() -> str:
    """The account name of the process's real uid (the uid number when the account has no name)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass(frozen=True)
class Acting:
    """The person behind a command: the name recorded as actor; ``registered`` is False in
    single-user mode."""

    name: str
    registered: bool


def acting(store: "Store", command: str, *, actor: str | None = None) -> Acting:
    """The person running ``command`` (a key of :data:`COMMAND_ACTIONS`), allowed to; raises
    :class:`InputError` (``forbidden``, exit 2) naming the role it needs otherwise."""
    action = COMMAND_ACTIONS[command]
    login = os_account()
    named = (actor or "").strip()
    if not store.users.any():
        return Acting(named or login, False)
    refused = store.users.refusal(login, action)
    if named and named != login:
        admin = store.users.refusal(login, "users")
        if admin is not None:
            raise InputError(login, FORBIDDEN, f"--actor is only for an admin's scripts: it {admin}")
        refused = store.users.refusal(named, action)
        if refused is None:
            store.audit.log_event(login, "act_as", "user", named, {"command": command})
        login = named
    if refused is not None:
        raise InputError(login, FORBIDDEN, f"`mhladr {command}` {refused}")
    return Acting(login, True)


def add_acting(parser: argparse.ArgumentParser, *, unblinding: bool = False) -> None:
    """``--actor`` (and ``--unblinded`` for a command that can read post-randomization values)."""
    if unblinding:
        parser.add_argument("--unblinded", action="store_true",
                            help="include results collected after randomization (role unblinded; audited)")
    parser.add_argument("--actor", default="",
                        help="who acts: single-user mode only (default: the login), or an admin's script")


def require(command: str, *, actor: str | None = None) -> Acting:
    """:func:`acting` for a command that opens no store of its own (run, watch, serve, reprocess)."""
    from pipeline.config import load_settings
    from pipeline.store import open_store

    with open_store(load_settings()) as store:
        return acting(store, command, actor=actor)
