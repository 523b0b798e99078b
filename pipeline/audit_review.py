"""The audit-trail review an inspector reads (EMA guideline on computerised systems and electronic
data in clinical trials, 2023, §6.2.2: the audit trail is reviewed, risk-based and documented,
looking for manipulation, overrides, unusual hours, refused access and system faults).

:func:`review` groups the entries of a period into the categories of :data:`CATEGORIES` (a
data-driven list: add a row to review something more), each item naming the record, the person
and the time, and adds the integrity problems ``audit verify`` finds. :func:`record_review` writes
that the period was reviewed (an ``audit_reviewed`` entry, signed: "audit trail reviewed").
Functional core: the store reads the entries, these functions sort and count them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pipeline.audit import AuditEntry, Problem, canonical_json, utc_iso
from pipeline.config import LabHours

if TYPE_CHECKING:
    from pipeline.signing import Signer
    from pipeline.store import Store
    from pipeline.store.signatures import SignatureRecord

# Writers that are the system itself, not a person (never "outside lab hours").
SYSTEM_ACTORS = frozenset({"pipeline", "migration", "export", "registry", "test-setup"})
# Gate corrections (``mhladr review regate``, issue 17) are audited under one of these actions.
GATE_CORRECTIONS = frozenset({"regate", "gate_correction", "correct_gate"})
REVIEWED = "audit_reviewed"


def _after(e: AuditEntry) -> dict[str, Any]:
    return e.after if isinstance(e.after, dict) else {}


# key, title, what it may reveal, which entries belong
CATEGORIES: tuple[tuple[str, str, str, Callable[[AuditEntry], bool]], ...] = (
    ("signed", "Signed records", "who took responsibility for what",
     lambda e: e.action == "sign"),
    ("supersedes", "Superseded decisions", "a decision overridden by a later one",
     lambda e: e.action.startswith("review_") and _after(e).get("supersedes") is not None),
    ("rejections", "Rejections", "results kept out of screening by a person",
     lambda e: e.action == "review_reject"),
    ("gate_corrections", "Gate corrections", "a result changed by a corrected gate",
     lambda e: e.action in GATE_CORRECTIONS),
    ("reprocess", "Reprocessed files", "a rejected file run again",
     lambda e: e.entity == "file" and "reprocessed by " in canonical_json(e.after)),
    ("refused_sign_ins", "Refused sign-ins", "guessing, or a forgotten password",
     lambda e: e.action == "login_failed"),
    ("refused_signatures", "Refused signatures", "a wrong password at the moment of signing",
     lambda e: e.action == "signature_refused"),
    ("user_changes", "User and role changes", "who may do what",
     lambda e: e.entity == "user" and e.action not in ("baseline", "act_as")),
    ("acting_for", "Acting for another user", "an admin's script recording someone else's action",
     lambda e: e.action == "act_as"),
    ("unblinded_reads", "Unblinded reads", "post-randomization values shown (blinding)",
     lambda e: e.action.startswith("unblinded_")),
    ("exports", "Exports delivered", "results sent out of the system",
     lambda e: e.entity == "outbox" and e.action == "delivered"),
    ("export_failures", "Export failures", "a sink that did not take a result (system fault)",
     lambda e: e.entity == "outbox" and e.action == "delivery_failed"),
    ("audit_reviews", "Earlier audit-trail reviews", "that the trail was reviewed, by whom",
     lambda e: e.action == REVIEWED),
)
OUTSIDE_HOURS = ("outside_lab_hours", "Actions outside lab hours", "work at unusual hours")
INTEGRITY = ("integrity", "Integrity problems (audit verify)", "records changed behind the application")


@dataclass(frozen=True)
class Item:
    """One reviewed fact: which record, who, when, and what."""

    at: datetime | None
    actor: str
    record: str
    what: str
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": utc_iso(self.at) if self.at else None, "actor": self.actor,
                "record": self.record, "what": self.what}


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    why: str
    items: tuple[Item, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "why": self.why, "count": len(self.items),
                "items": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class AuditReview:
    """A period's review: its categories, the entries read, the chain head, and who signed it."""

    since: datetime | None
    until: datetime
    lab_hours: str
    entries: int
    head: str
    categories: tuple[Category, ...]
    signature: dict[str, str] | None = field(default=None)

    @property
    def counts(self) -> dict[str, int]:
        return {c.key: len(c.items) for c in self.categories}

    def as_dict(self) -> dict[str, Any]:
        return {"since": utc_iso(self.since) if self.since else None, "until": utc_iso(self.until),
                "lab_hours": self.lab_hours, "entries": self.entries, "head": self.head, "counts": self.counts,
                "categories": [c.as_dict() for c in self.categories], "signature": self.signature}


def _item(e: AuditEntry) -> Item:
    detail = canonical_json(e.after) if e.after is not None else ""
    return Item(e.at, e.actor, f"{e.entity} {e.entity_id}", f"{e.action}" + (f" {detail}" if detail else ""), e.seq)


def review(entries: Iterable[AuditEntry], problems: Iterable[Problem], *, since: datetime | None, until: datetime,
           hours: LabHours, head: str, tz: tzinfo | None = None) -> AuditReview:
    """Group the entries of [since, until] into :data:`CATEGORIES`, persons' actions outside
    ``hours`` (local time ``tz``; None: this machine's) and the integrity ``problems``."""
    chosen = [e for e in entries if (since is None or e.at >= since) and e.at <= until]
    groups = [Category(key, title, why, tuple(_item(e) for e in chosen if belongs(e)))
              for key, title, why, belongs in CATEGORIES]
    late = tuple(_item(e) for e in chosen if e.actor not in SYSTEM_ACTORS and e.action != "baseline"
                 and not hours.within(e.at, tz))
    found = tuple(Item(None, "-", f"{p.table} {p.row}", p.what) for p in problems)
    return AuditReview(since, until, str(hours), len(chosen), head,
                       (*groups, Category(*OUTSIDE_HOURS, late), Category(*INTEGRITY, found)))


def start_of(day: date, tz: tzinfo | None = None) -> datetime:
    """Midnight of ``day`` in local time ``tz`` (None: this machine's), as an aware date-time."""
    local = datetime.combine(day, time())
    return local.replace(tzinfo=tz) if tz is not None else local.astimezone()


def last_reviewed(entries: Iterable[AuditEntry]) -> datetime | None:
    """Just after the end of the period the last recorded review covered (None: never reviewed)."""
    ends = [_after(e).get("until") for e in entries if e.action == REVIEWED]
    return datetime.fromisoformat(ends[-1]) + timedelta(microseconds=1) if ends and ends[-1] else None


def build(store: "Store", since: datetime | None, hours: LabHours, tz: tzinfo | None = None) -> AuditReview:
    """The review of ``store`` from ``since`` (None: since the last recorded review, or from the start)."""
    entries = store.audit.entries()
    verification = store.audit.verify()
    start = since if since is not None else last_reviewed(entries)
    until = max((e.at for e in entries), default=store.clock())
    return review(entries, verification.problems, since=start, until=until, hours=hours,
                  head=verification.head, tz=tz)


def record_review(store: "Store", done: AuditReview, signer: "Signer") -> "SignatureRecord | None":
    """Record that ``done`` was reviewed (an ``audit_reviewed`` entry with its period, counts and
    head) and sign it "audit trail reviewed" once the signer's password is checked; None in
    single-user mode (recorded, unsigned). Raises :class:`pipeline.signing.SignatureRefused`."""
    from pipeline.signing import authenticate
    from pipeline.store.signatures import sign_in

    proven = authenticate(store, signer, "audit review")
    period = f"{utc_iso(done.since) if done.since else 'start'}..{utc_iso(done.until)}"
    with store.write(signer.name) as tx:
        tx.audit(REVIEWED, "audit", period, None,
                 {"since": utc_iso(done.since) if done.since else None, "until": utc_iso(done.until),
                  "counts": done.counts, "head": done.head})
        return sign_in(tx, "audit_log", tx.head.seq, signer.name, "audit trail reviewed") if proven else None


def to_html(done: AuditReview, *, fragment: bool = False) -> str:
    """The review as HTML: a summary table of counts, then each non-empty category's items
    (``fragment``: without the page around it, for the console)."""
    esc = html.escape
    period = f"{done.since.strftime('%Y-%m-%d %H:%M') if done.since else 'the start'} to " \
             f"{done.until.strftime('%Y-%m-%d %H:%M')} UTC"
    rows = "".join(f'<tr><td><a href="#{c.key}">{esc(c.title)}</a></td><td class="num">{len(c.items)}</td>'
                   f"<td>{esc(c.why)}</td></tr>" for c in done.categories)
    body = (f"<p>Period: {esc(period)} · {done.entries:,} audit entries · lab hours {esc(done.lab_hours)} "
            f"(local) · chain head <code>{esc(done.head)}</code></p>"
            + (f'<p class="signature">Reviewed and signed by {esc(done.signature["user"])}, '
               f'{esc(done.signature["signed_at"])}: {esc(done.signature["meaning"])}</p>' if done.signature else "")
            + f'<table class="counts"><tr><th>category</th><th>count</th><th>why it matters</th></tr>{rows}</table>')
    for c in done.categories:
        if not c.items:
            continue
        items = "".join(f"<tr><td>{esc(i.at.strftime('%Y-%m-%d %H:%M:%S') if i.at else '-')}</td>"
                        f"<td>{esc(i.actor)}</td><td>{esc(i.record)}</td><td>{esc(i.what[:200])}</td></tr>"
                        for i in c.items)
        body += (f'<h2 id="{c.key}">{esc(c.title)} ({len(c.items)})</h2><table class="items">'
                 f"<tr><th>time (UTC)</th><th>who</th><th>record</th><th>what</th></tr>{items}</table>")
    if fragment:
        return body
    style = ("body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}table{border-collapse:collapse}"
             "td,th{padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}"
             ".num{text-align:right}.signature{background:#eef7ee;padding:.5em}")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Audit-trail review</title>'
            f"<style>{style}</style></head><body><h1>Audit-trail review</h1>{body}</body></html>\n")

