"""Prefect artifacts of a flow run: the table of files processed, and a markdown page that links
each sample's report and review page in the lab console (http URLs a browser opens; never
``file://``) and gives each failed file its whole reason and next step."""

from __future__ import annotations

import json
import os
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


def console_base(home: Path) -> str:
    """The lab console's URL: the one ``serve`` gives its flows (``MHLADR_CONSOLE_URL``), else the
    running ``serve``'s (``MHLADR_HOME/serve.json``), else the address ``serve`` would take
    (``MHLADR_CONSOLE_HOST``/``MHLADR_CONSOLE_PORT``, 127.0.0.1:8470)."""
    if os.environ.get("MHLADR_CONSOLE_URL"):
        return os.environ["MHLADR_CONSOLE_URL"].rstrip("/")
    try:
        return json.loads((Path(home) / "serve.json").read_text())["console"].rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        host = os.environ.get("MHLADR_CONSOLE_HOST", "").strip() or "127.0.0.1"
        port = os.environ.get("MHLADR_CONSOLE_PORT", "").strip() or "8470"
        return f"http://{host}:{port}"


def report_markdown(results: Sequence[FileResult], console: str) -> str | None:
    """Links to each sample's report and review page in the console, and the files that need a
    person (rejected, QC fail, waiting) with every reason, untruncated."""
    links, attention = [], []
    for r in results:
        mid = r.fields.get("measurement_id")
        if r.kind == "sample" and mid is not None:
            label = r.patient_id or Path(r.file).name
            links.append(f"- [{label} — {Path(r.file).name}]({console}/reports/measurements/{mid}) ({r.status}; "
                         f"[review page]({console}/reviews/{mid}))")
        if r.status in ("rejected", "qc_fail", "pending_calibration"):
            attention.append(f"- **{Path(r.file).name}**: {r.status}\n" + "".join(f"  - {x}\n" for x in r.reasons))
    if not links and not attention:
        return None
    text = ""
    if links:
        text += "# Sample reports\n\n" + "\n".join(links) + "\n"
    if attention:
        text += (f"\n# Files that need a person\n\nAll of today's files: {console}/files\n\n"
                 + "".join(attention))
    return text


def publish(results: Sequence[FileResult], key_prefix: str) -> None:
    """Create the run's artifacts: the files table and the report links."""
    if results:
        create_table_artifact(table=file_rows(results), key=f"{key_prefix}-files",
                              description=f"{len(results)} file(s) processed")
    from pipeline.config import load_settings

    markdown = report_markdown(results, console_base(load_settings().home))
    if markdown:
        create_markdown_artifact(markdown=markdown, key=f"{key_prefix}-reports",
                                 description="HTML report of each sample")
