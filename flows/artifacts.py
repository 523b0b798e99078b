"""Prefect artifacts of a flow run: the table of files processed and links to sample reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline.processing import FileResult

REPORT_SUFFIXES = (".html",)


def file_rows(results: Sequence[FileResult]) -> list[dict]:
    """One row per file: what the technician scans first."""
    rows = []
    for r in results:
        qc = r.fields.get("qc")
        rows.append({
            "file": Path(r.file).name, "kind": r.kind, "status": r.status,
            "patient_id": r.patient_id or "", "qc": qc.get("status", "") if isinstance(qc, dict) else "",
            "abc": _fmt(r.fields.get("abc")) if r.status == "measured" else "",
            "reasons": "; ".join(r.reasons), "sha256": r.sha256[:12],
        })
    return rows


def _fmt(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, (int, float)) else ""


def find_reports(reports_dir: Path, result: FileResult) -> list[Path]:
    """The report named in the result, else reports written for the same content (hash in the name)."""
    named = result.fields.get("report")
    if named and Path(named).is_file():
        return [Path(named)]
    if not reports_dir.is_dir():
        return []
    prefix = result.sha256[:12]
    return sorted(p for p in reports_dir.iterdir() if p.suffix in REPORT_SUFFIXES and prefix in p.name)


def report_markdown(reports_dir: Path, results: Sequence[FileResult]) -> str | None:
    """A markdown list linking each sample's HTML report (only reports that exist)."""
    lines = []
    for r in results:
        if r.kind != "sample":
            continue
        for report in find_reports(reports_dir, r):
            label = r.patient_id or Path(r.file).name
            lines.append(f"- [{label} — {Path(r.file).name}]({report.resolve().as_uri()}) ({r.status})")
    if not lines:
        return None
    return "# Sample reports\n\n" + "\n".join(lines) + "\n"


def publish(results: Sequence[FileResult], reports_dir: Path, key_prefix: str) -> None:
    """Create the run's artifacts: the files table and the report links."""
    if results:
        create_table_artifact(table=file_rows(results), key=f"{key_prefix}-files",
                              description=f"{len(results)} file(s) processed")
    markdown = report_markdown(reports_dir, results)
    if markdown:
        create_markdown_artifact(markdown=markdown, key=f"{key_prefix}-reports",
                                 description="HTML report of each sample")
