"""Files seen by the pipeline: one row per sighting (content SHA-256 + path); the first sighting
of a content is the original, later ones are ``duplicate`` rows. The file-status rule lives here."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.store import models as m
from pipeline.store.records import FileRecord
from pipeline.store.tx import Transactions, Tx
from science.qc import QC


def file_status(kind: str, qc_status: str) -> str:
    """The one file-status rule for a file whose result is stored: a bead tube is ``calibrated``,
    a patient tube ``measured``, either ``qc_fail`` when its QC failed."""
    if qc_status == "fail":
        return "qc_fail"
    return "calibrated" if kind == "beads" else "measured"


def settled(kind: str, qc: QC, note: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The status and reasons a file's row takes when its result is stored (:func:`settle_in`)."""
    return file_status(kind, qc.status), qc.reasons + ((note,) if note else ())


def file_record(row: m.File) -> FileRecord:
    return FileRecord(row.id, row.sha256, row.path, row.size, row.kind, row.status,
                      tuple(row.reasons), row.patient_id, row.collection_date, row.first_seen, row.updated)


def file_dict(row: m.File) -> dict[str, Any]:
    return {"sha256": row.sha256, "path": row.path, "size": row.size, "kind": row.kind,
            "status": row.status, "reasons": list(row.reasons), "patient_id": row.patient_id,
            "collection_date": row.collection_date.isoformat() if row.collection_date else None}


def original(s: Session, sha256: str) -> m.File | None:
    """The original (first) sighting of this content."""
    return s.scalars(select(m.File).where(m.File.sha256 == sha256, m.File.status != "duplicate")).first()


def set_status(tx: Tx, row: m.File, status: str, reasons: Sequence[str], action: str = "update_file",
               **fields: Any) -> bool:
    """Apply and audit a change of a file row; touch its patient when the change can move a
    screening decision (status, patient or collection date). True when anything changed."""
    before = file_dict(row)
    row.status, row.reasons = status, list(reasons)
    for name, value in fields.items():
        setattr(row, name, value)
    after = file_dict(row)
    if after == before:
        return False
    row.updated = tx.now()
    tx.save(row, action, "file", before, after, entity_id=row.sha256)
    if any(before[k] != after[k] for k in ("status", "patient_id", "collection_date")):
        tx.touch(before["patient_id"])
        tx.touch(row.patient_id)
    return True


def record_in(tx: Tx, sha256: str, path: str, size: int, kind: str, status: str,
              reasons: Sequence[str] = (), *, patient_id: str | None = None,
              collection_date: date | None = None) -> FileRecord:
    """:meth:`Files.record` inside a transaction the caller holds."""
    s = tx.session
    same = s.scalars(select(m.File).where(m.File.sha256 == sha256, m.File.path == path)).first()
    if same is not None:
        return file_record(same)
    first = original(s, sha256)
    if first is not None:
        status, reasons = "duplicate", (f"same content as {first.path}",)
    now = tx.now()
    row = m.File(sha256=sha256, path=path, size=size, kind=kind, status=status, reasons=list(reasons),
                 patient_id=patient_id, collection_date=collection_date, first_seen=now, updated=now)
    tx.save(row, "record_file", "file", None, file_dict(row), entity_id=sha256)
    if row.status != "duplicate":
        tx.touch(row.patient_id)
    return file_record(row)


def settle_in(tx: Tx, sha256: str, kind: str, qc: QC, *, path: str | None = None, size: int | None = None,
              patient_id: str | None = None, collection_date: date | None = None,
              note: str | None = None) -> FileRecord | None:
    """The file row follows its stored result (:func:`file_status`), in the result's transaction:
    the original row's status changes, or, for a file not seen yet (``path`` given), its row is
    recorded with that status. Returns the file's row as it now is (None: no row)."""
    status, reasons = settled(kind, qc, note)
    identity = {k: v for k, v in (("patient_id", patient_id), ("collection_date", collection_date)) if v is not None}
    row = original(tx.session, sha256)
    if row is not None:
        set_status(tx, row, status, reasons, **identity)
        return file_record(row)
    if path is not None:
        return record_in(tx, sha256, path, size or 0, kind, status, reasons, **identity)
    return None


class Files:
    """The ``files`` table."""

    def __init__(self, store: Transactions) -> None:
        self.store = store

    def record(self, sha256: str, path: str, size: int, kind: str, status: str,
               reasons: Sequence[str] = (), *, patient_id: str | None = None,
               collection_date: date | None = None, actor: str = "pipeline",
               today: date | None = None) -> FileRecord:
        """Record a file sighting; idempotent per (content, path).

        Content already known under another path is recorded as a ``duplicate`` sighting (the
        earlier file keeps its status); the returned record says which.
        """
        with self.store.write(actor, today) as tx:
            return record_in(tx, sha256, path, size, kind, status, reasons,
                             patient_id=patient_id, collection_date=collection_date)

    def update(self, sha256: str, status: str, reasons: Sequence[str] = (), *, actor: str = "pipeline",
               today: date | None = None, **fields: Any) -> FileRecord:
        """Change the original file's status/reasons (and ``kind``, ``patient_id``,
        ``collection_date``, ``path``); audited; a no-op when nothing changes."""
        allowed = {"kind", "patient_id", "collection_date", "path"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update file fields {sorted(set(fields) - allowed)}")
        with self.store.write(actor, today) as tx:
            row = original(tx.session, sha256)
            if row is None:
                raise KeyError(f"no file with sha256 {sha256}")
            set_status(tx, row, status, reasons, **fields)
            return file_record(row)

    def relocate(self, sha256: str, new_path: str | Path, *, actor: str = "watcher") -> FileRecord | None:
        """Record that the original file of this content now lives at ``new_path`` (audited);
        nothing is re-evaluated since only the path changes. None when the content is unknown."""
        with self.store.write(actor) as tx:
            row = original(tx.session, sha256)
            if row is None:
                return None
            set_status(tx, row, row.status, row.reasons, action="relocate_file", path=str(new_path))
            return file_record(row)

    def original(self, sha256: str) -> FileRecord | None:
        """The original (first) sighting of this content, if any."""
        with self.store.read() as s:
            row = original(s, sha256)
            return file_record(row) if row is not None else None

    def originals(self, sha256s: Sequence[str]) -> dict[str, FileRecord]:
        """The original sightings of these contents, by SHA-256 (one query)."""
        with self.store.read() as s:
            rows = s.scalars(select(m.File).where(m.File.sha256.in_(set(sha256s)), m.File.status != "duplicate"))
            return {r.sha256: file_record(r) for r in rows}

    def get(self, file_id: int) -> FileRecord | None:
        """One sighting by its row id (the id of ``GET /api/files``)."""
        with self.store.read() as s:
            row = s.get(m.File, file_id)
            return file_record(row) if row is not None else None

    def landed(self, start: datetime, end: datetime) -> list[FileRecord]:
        """Every sighting first seen in ``[start, end)`` (aware datetimes), in landing order."""
        with self.store.read() as s:
            query = (select(m.File).where(m.File.first_seen >= start, m.File.first_seen < end)
                     .order_by(m.File.first_seen, m.File.id))
            return [file_record(r) for r in s.scalars(query)]

    def list(self, status: str | None = None) -> list[FileRecord]:
        with self.store.read() as s:
            query = select(m.File).order_by(m.File.id)
            if status is not None:
                query = query.where(m.File.status == status)
            return [file_record(r) for r in s.scalars(query)]
