"""Screening digest: the screening log (as ``mhladr screening`` shows it) as a markdown artifact,
with the audit trail's verification and its chain head ``HASH@SEQ``: published daily outside the
results database (in Prefect's), so a later ``mhladr audit verify --head HASH@SEQ`` catches a
chain rewritten since."""

from __future__ import annotations

from collections import Counter

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from pipeline import formatting as fmt
from pipeline.config import load_settings
from pipeline.screening import screening_rows
from pipeline.store import open_store
from pipeline.store.integrity import Verification

COLUMNS = ("patient_id", "status", "abc", "icu_day", "file", "reasons")


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    if column == "abc":
        return fmt.abc(value)
    if column == "reasons" and isinstance(value, (list, tuple)):
        return "; ".join(str(r) for r in value)
    if column == "file" and value:
        return str(value).rsplit("/", 1)[-1]
    text = "" if value is None else str(value)
    return text.replace("|", "\\|")


def audit_markdown(check: Verification, shown: int = 20) -> list[str]:
    """The audit section: verdict, the head to publish, the first problems."""
    verdict = ("intact: every stored row matches its audit trail" if check.ok
               else f"**{len(check.problems)} problem(s)**: records changed behind the application")
    lines = ["## Audit trail", "", f"{check.entries:,} entries, {check.rows:,} rows checked; {verdict}.", "",
             f"Chain head: `{check.head}` (check later with `mhladr audit verify --head {check.head}`)."]
    lines += [f"- {p.table} {p.row}: {p.what}" for p in check.problems[:shown]]
    if len(check.problems) > shown:
        lines.append(f"- ... {len(check.problems) - shown} more (`mhladr audit verify`)")
    return lines


def digest_markdown(rows: list[dict], check: Verification) -> str:
    """A count per status, one table row per patient, then the audit trail's verification."""
    counts = Counter(r.get("status") for r in rows)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("eligible", "pending", "not_eligible") if counts[s])
    lines = ["# Screening log", "", f"{len(rows)} patient(s): {summary or 'none'}.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r, c) for c in COLUMNS) + " |" for r in rows]
    return "\n".join([*lines, "", *audit_markdown(check)]) + "\n"


@flow(name="mhladr-screening-digest", log_prints=False)
def screening_digest_flow() -> list[dict]:
    """Re-evaluate every patient for today, verify the audit trail, publish both."""
    with open_store(load_settings()) as store:
        rows = screening_rows(store, None, None)
        check = store.audit.verify()
    create_markdown_artifact(markdown=digest_markdown(rows, check), key="screening-digest",
                             description="screening log of the trial")
    return rows
