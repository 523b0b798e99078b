"""The password re-entered at the moment of signing, on the command line: ``--password-stdin``
(one line) or a prompt without echo on a terminal. In single-user mode (no user registered)
nothing is asked: the record stays unsigned, marked so (``pipeline.signing``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipeline.errors import BAD_INPUT, InputError

if TYPE_CHECKING:
    from app.identity import Acting
    from pipeline.signing import Signer


def add_signing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read your password (the electronic signature) from standard input; "
                             "without it a terminal prompts for it")


def signer(who: "Acting", args: argparse.Namespace) -> "Signer":
    """The signer behind a command: the acting person and the password they re-enter now."""
    from pipeline.signing import Signer

    if not who.registered:
        return Signer(who.name, None, False)
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password of {who.name} (electronic signature): ")
    else:
        raise InputError("--password-stdin", BAD_INPUT, "signing needs your password: give --password-stdin "
                                                        "(and the password on standard input) or run it on a terminal")
    return Signer(who.name, password, True)
