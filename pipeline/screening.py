"""The screening log as rows: every patient re-evaluated for a day, as ``mhladr screening`` and
the screening-digest flow show it.

Results collected after a patient's randomization stay out unless a named actor asks for them;
such a read is recorded in the audit trail.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pipeline.store import Store


def screening_rows(store: Store, today: date | None, actor: str | None) -> list[dict[str, Any]]:
    """Re-evaluate every patient as of ``today`` and list the log; with an actor, add the
    post-randomization results and audit the read."""
    store.screening.evaluate_all(today, actor="screening")
    rows = [r.as_dict() for r in store.screening.log()]
    if actor is None:
        return rows
    blinded = store.measurements.blinded()
    for row in rows:
        row["post_randomization"] = [
            {"measurement_id": mm.id, "collection_date": mm.collection_date.isoformat(), "abc": mm.abc,
             "qc": mm.qc.as_dict(), "review": mm.review, "file_sha256": mm.file_sha256}
            for mm in blinded if mm.patient_id == row["patient_id"]]
    store.audit.log_unblinded_read(actor, "unblinded_screening", sorted({mm.patient_id for mm in blinded}),
                                   {"measurements": [mm.id for mm in blinded]})
    return rows
