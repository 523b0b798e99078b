"""Who may sign, at the moment of signing (21 CFR Part 11 §11.200(a): a non-biometric signature
is two components, the user name and the password, both re-entered for the first signing of a
session; EMA guideline on computerised systems in clinical trials, 2023, §6.8).

:func:`authenticate` checks the password a registered user re-enters; a wrong one records
nothing but a ``signature_refused`` audit entry, and counts toward the sign-in lockout (refused
sign-ins and refused signatures of a name within :data:`LOCKOUT_WINDOW`, read from the audit
trail so the command line and the console share it). :func:`sign_record` signs any stored row
(or audit entry) with a meaning and its digest: gate corrections, reprocess and the audit review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.store import Store
    from pipeline.store.signatures import SignatureRecord

LOCKOUT_FAILURES = 5                    # as the console's sign-in throttle (per name)
LOCKOUT_WINDOW = timedelta(minutes=15)


class SignatureRefused(ValueError):
    """The password re-entered at signing was wrong (or the name is locked out): nothing recorded."""


@dataclass(frozen=True)
class Signer:
    """The person signing: ``password`` is what they re-entered; ``registered`` False in
    single-user mode (no user registered: nothing can be signed, records are marked unsigned)."""

    name: str
    password: str | None
    registered: bool


def authenticate(store: "Store", signer: Signer, what: str) -> bool:
    """True when ``signer`` proved who they are (False in single-user mode: sign nothing);
    raises :class:`SignatureRefused` (audited as ``signature_refused``) otherwise."""
    if not signer.registered:
        return False
    since = store.clock() - LOCKOUT_WINDOW
    if store.audit.failures(signer.name, since) >= LOCKOUT_FAILURES:
        store.audit.log_event(signer.name, "signature_refused", "signature", what, {"why": "locked out"})
        raise SignatureRefused(f"{signer.name} is locked out after {LOCKOUT_FAILURES} refused sign-ins or "
                               f"signatures within {LOCKOUT_WINDOW.seconds // 60} min: try again later")
    if not signer.password or store.users.authenticate(signer.name, signer.password) is None:
        store.audit.log_event(signer.name, "signature_refused", "signature", what, {"why": "wrong password"})
        raise SignatureRefused(f"signature refused: wrong password for {signer.name} (nothing was recorded)")
    return True


def sign_record(store: "Store", signer: Signer, table: str, key: object, meaning: str) -> "SignatureRecord | None":
    """Sign row ``key`` of ``table`` (any store table, or ``audit_log`` by entry number) with
    ``meaning``, after :func:`authenticate`; None in single-user mode (unsigned)."""
    if not authenticate(store, signer, f"{table} {key}"):
        return None
    return store.signatures.sign(table, key, signer.name, meaning)
