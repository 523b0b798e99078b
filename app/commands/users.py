"""``mhladr users add|list|disable|enable|passwd``: the people who may use the system, each with one role
(technician, investigator, unblinded, admin; see README "Records, users and roles").

Passwords are read from standard input (``--password-stdin``; typed without echo on a terminal)
and stored only as salted scrypt hashes. The first user registered must be an admin: from then
on the command line checks roles. Names are ``[a-z0-9._-]``, 1-32 characters, unique without
regard to case. ``passwd`` is for the person themself (their OS account) or an admin.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.common import add_json, command
from pipeline.access import ROLES


def register(subparsers: Any) -> None:
    parser = command(subparsers, "users", summary="register, list and disable the people who use the system",
                     description="Each person has a login name (the command line acts as the operating-system\n"
                                 "login) and one role: technician, investigator, unblinded or admin (README.md,\n"
                                 "Records, users and roles). Passwords (for the lab console) are kept only as\n"
                                 "salted scrypt hashes. The first person registered must be an admin; until then\n"
                                 "the command line runs in single-user mode.",
                     examples="echo 'a long passphrase' | mhladr users add ann --role admin --password-stdin\n"
                              "mhladr users list\n"
                              "mhladr users disable tom\n"
                              "mhladr users enable tom\n"
                              "mhladr users passwd tom --password-stdin")
    sub = parser.add_subparsers(dest="users_command", required=True)
    add = sub.add_parser("add", help="register a person with a role (the first one: an admin)",
                         description="Register a person; on a terminal the password is typed without "
                                     "echo, from a script it is the first line of standard input. Example: "
                                     "mhladr users add ann --role admin --password-stdin")
    add.add_argument("name", help="the person's login name: a-z 0-9 . _ -, 1-32 characters (the command line acts "
                                  "as the operating-system account of that name)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password from standard input (console login; at least 8 characters)")
    add.set_defaults(func=run_add)
    listing = sub.add_parser("list", help="registered people, their roles, whether active")
    listing.set_defaults(func=run_list)
    disable = sub.add_parser("disable", help="switch a person off (kept for the audit trail)")
    disable.add_argument("name")
    disable.set_defaults(func=run_disable)
    enable = sub.add_parser("enable", help="switch a disabled person on again")
    enable.add_argument("name")
    enable.set_defaults(func=run_enable)
    passwd = sub.add_parser("passwd", help="set a new password (your own, or anyone's as an admin)",
                            description="Set a person's console password; their console sessions end. "
                                        "Example: mhladr users passwd tom --password-stdin")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", required=True,
                        help="read the new password from standard input (at least 8 characters)")
    passwd.set_defaults(func=run_passwd)
    for cmd in (add, listing, disable, enable, passwd):
        add_json(cmd)


def _password() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _user(u: Any) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "active": u.active}


def run_add(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline.access import name_problem, password_problem
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.store import open_store

    problem = name_problem(args.name)
    if problem:
        raise InputError(args.name, BAD_INPUT, problem)
    with open_store(load_settings()) as store:
        first = not store.users.any()
        if first and args.role != "admin":
            raise InputError(args.name, BAD_INPUT, "the first user must be an admin (--role admin): "
                                                   "only an admin registers the others")
        who = acting(store, "users add")
        password = _password()
        problem = password_problem(password)
        if problem:
            raise InputError("--password-stdin", BAD_INPUT, problem)
        try:
            user = store.users.add(args.name, args.role, password, actor=who.name)
        except ValueError as exc:
            raise InputError(args.name, BAD_INPUT, str(exc)) from None
    text = f"registered {user.name} as {user.role}"
    if first:
        text += "; single-user mode is over: from now on each command checks the login's role"
    return _user(user), text


def run_list(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.store import open_store

    with open_store(load_settings()) as store:
        acting(store, "users list")
        users = [_user(u) for u in store.users.list()]
    if not users:
        return users, "no users registered (single-user mode)"
    lines = [f"{'name':<20} {'role':<13} active"] + [
        f"{u['name']:<20} {u['role']:<13} {'yes' if u['active'] else 'no'}" for u in users]
    return users, "\n".join(lines)


def run_disable(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.store import open_store

    with open_store(load_settings()) as store:
        who = acting(store, "users disable")
        try:
            user = store.users.disable(args.name, actor=who.name)
        except KeyError:
            raise InputError(args.name, BAD_INPUT, "no such user") from None
        except ValueError as exc:
            raise InputError(args.name, BAD_INPUT, str(exc)) from None
    return _user(user), f"disabled {user.name} ({user.role})"


def run_enable(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.store import open_store

    with open_store(load_settings()) as store:
        who = acting(store, "users enable")
        try:
            user = store.users.enable(args.name, actor=who.name)
        except KeyError:
            raise InputError(args.name, BAD_INPUT, "no such user") from None
    return _user(user), f"enabled {user.name} ({user.role})"


def run_passwd(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from app.identity import acting, os_account
    from pipeline.access import password_problem
    from pipeline.config import load_settings
    from pipeline.errors import BAD_INPUT, InputError
    from pipeline.store import open_store

    with open_store(load_settings()) as store:
        target = store.users.get(args.name)
        me = store.users.get(os_account())
        if target is None:
            raise InputError(args.name, BAD_INPUT, "no such user")
        own = me is not None and me.active and me.name == target.name
        actor = me.name if own and me is not None else acting(store, "users passwd").name
        password = _password()
        problem = password_problem(password)
        if problem:
            raise InputError("--password-stdin", BAD_INPUT, problem)
        user = store.users.set_password(target.name, password, actor=actor)
    return _user(user), f"new password set for {user.name}; their console sessions have ended"
