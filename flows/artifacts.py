"""Prefect artifacts of a flow run: the table of files processed and links to sample reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline import formatting as fmt
from pipeline.result_documents import FileResult


def file_rows(results: Sequence[FileResult]) -> list[dict]:
    """One row per file: what the technician scans first."""
    rows = []
    for r in results:
        qc = r.fields.get("qc")
        rows.append({
            "file": Path(r.file).name, "kind": r.kind, "status": r.status,
            "patient_id": r.patient_id or "", "qc": qc.get("status", "") if isinstance(qc, dict) else "",
            "abc": fmt.abc(r.fields.get("abc")) if r.status == "measured" else "",
            "reasons": "; ".join(r.reasons), "sha256": r.sha256[:12],
        })
    return rows


def report_markdown(results: Sequence[FileResult]) -> str | None:
    """A markdown list linking each sample's HTML report (only reports that exist)."""
    lines = []
    for r in results:
        report = Path(r.fields.get("report") or "")
        if r.kind == "sample" and report.is_file():
            label = r.patient_id or Path(r.file).name
            lines.append(f"- [{label} — {Path(r.file).name}]({report.resolve().as_uri()}) ({r.status})")
    if not lines:
        return None
    return "# Sample reports\n\n" + "\n".join(lines) + "\n"


def publish(results: Sequence[FileResult], key_prefix: str) -> None:
    """Create the run's artifacts: the files table and the report links."""
    if results:
        create_table_artifact(table=file_rows(results), key=f"{key_prefix}-files",
                              description=f"{len(results)} file(s) processed")
    markdown = report_markdown(results)
    if markdown:
        create_markdown_artifact(markdown=markdown, key=f"{key_prefix}-reports",
                                 description="HTML report of each sample")
