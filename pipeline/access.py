"""People and what they may do: roles, the permission table the command line and the lab console
both check, and passwords kept only as salted slow hashes.

Roles (trial data management; EMA guideline on computerised systems in clinical trials, 2023:
blinded users never see blind-breaking data): ``technician`` reviews QC and reprocesses,
``investigator`` follows screening blinded, ``unblinded`` may read post-randomization values
(each read audited), ``admin`` manages users and settings.

Passwords: scrypt (RFC 7914; Python's ``hashlib.scrypt``) with a 16-byte random salt,
N = 2**14, r = 8, p = 1 (about 16 MiB and tens of milliseconds per check), compared in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

ROLES = ("technician", "investigator", "unblinded", "admin")

# action -> the roles that may take it
PERMISSIONS: dict[str, frozenset[str]] = {
    "review": frozenset({"technician", "admin"}),
    "reprocess": frozenset({"technician", "admin"}),
    "process": frozenset({"technician", "admin"}),            # run, watch, serve
    "screening": frozenset({"investigator", "unblinded", "technician", "admin"}),
    "unblinded_read": frozenset({"unblinded"}),
    "import_registry": frozenset({"investigator", "admin"}),
    "export": frozenset({"investigator", "unblinded", "admin"}),
    "users": frozenset({"admin"}),
    "settings": frozenset({"admin"}),
    "audit_review": frozenset({"admin"}),                    # audit report, validate (signed)
}

_N, _R, _P, _SALT, _LEN = 2 ** 14, 8, 1, 16, 32
# NIST SP 800-63B 5.1.1.2: memorized secrets of at least 8 characters, no composition rules.
MIN_PASSWORD_LENGTH = 8
FORBIDDEN = "forbidden"         # the InputError code of a refused role (exit 2)
NAME_RULE = re.compile(r"[a-z0-9._-]{1,32}")      # user names; unique without regard to case


@dataclass(frozen=True)
class User:
    name: str
    role: str
    active: bool
    generation: int = field(default=0, compare=False)     # console sessions of an older one are over

    def may(self, action: str) -> bool:
        """Whether this (active) user's role allows ``action`` (see :data:`PERMISSIONS`)."""
        return self.active and self.role in PERMISSIONS[action]


def roles_for(action: str) -> tuple[str, ...]:
    """The roles allowed to take ``action``, in :data:`ROLES` order (for messages)."""
    return tuple(r for r in ROLES if r in PERMISSIONS[action])


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user name (DESIGN.md, Additions 2026-12-07: ``[a-z0-9._-]``, 1-32
    characters), or None."""
    if NAME_RULE.fullmatch(name):
        return None
    return (f"{name!r} is not a user name: 1-32 characters among lower-case letters a-z, digits 0-9, "
            "'.', '_' and '-'")


def password_problem(password: str) -> str | None:
    """Why a new password is refused (None when it is acceptable)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of a password with a fresh random salt."""
    if not password:
        raise ValueError("a password cannot be empty")
    salt = os.urandom(_SALT)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
