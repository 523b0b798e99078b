"""Screening digest: the screening log (as ``mhladr screening`` shows it) as a markdown artifact."""

from __future__ import annotations

from collections import Counter

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from pipeline import formatting as fmt
from pipeline.config import load_settings
from pipeline.screening import screening_rows
from pipeline.store import open_store

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


def digest_markdown(rows: list[dict]) -> str:
    """A count per status, then one table row per patient."""
    counts = Counter(r.get("status") for r in rows)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("eligible", "pending", "not_eligible") if counts[s])
    lines = ["# Screening log", "", f"{len(rows)} patient(s): {summary or 'none'}.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r, c) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


@flow(name="mhladr-screening-digest", log_prints=False)
def screening_digest_flow() -> list[dict]:
    """Re-evaluate every patient for today and publish the screening log."""
    with open_store(load_settings()) as store:
        rows = screening_rows(store, None, None)
    create_markdown_artifact(markdown=digest_markdown(rows), key="screening-digest",
                             description="screening log of the trial")
    return rows
