"""The person's steps, each one function shared by the command line, the console and the flows.

:func:`decide`, the one review-decision step (``mhladr review``, the console): check the signer's password, record the decision signed (or unsigned, marked so, in
single-user mode) in one audited transaction, and redraw the tube's report (its next step and
decision changed). Raises ``KeyError`` for an unknown result, :class:`pipeline.signing.SignatureRefused`
for a wrong password (nothing recorded) and ``ValueError`` for a refused decision.

:func:`reprocess` (``mhladr reprocess``; the console's Files page can call it too): password
checked first, the rejected file run again, the samples its beads finish completed, and the
audited outcome signed "reprocessed".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.signing import Signer, authenticate

if TYPE_CHECKING:
    from pipeline.processing import Processor
    from pipeline.result_documents import FileResult
    from pipeline.store import ReviewRecord, Store
    from pipeline.store.records import ScreeningRecord
    from pipeline.store.signatures import SignatureRecord


@dataclass(frozen=True)
class Decided:
    """A recorded decision, its signature (None: single-user mode) and the patient's screening after it."""

    review: "ReviewRecord"
    signature: "SignatureRecord | None"
    screening: "ScreeningRecord | None"

    def as_dict(self) -> dict[str, Any]:
        r = self.review
        return {"measurement_id": r.measurement_id, "decision": r.decision, "reason": r.reason, "actor": r.actor,
                "decided_at": r.decided_at.isoformat(), "supersedes": r.supersedes,
                "signature": self.signature.manifestation() if self.signature else None,
                "screening": self.screening.as_dict() if self.screening else None}


def decide(store: "Store", reports: Path, measurement_id: int, decision: str, reason: str, signer: Signer, *,
           supersede: bool = False) -> Decided:
    """Approve or reject a QC ``review`` result as ``signer`` (see the module)."""
    from pipeline.report.layout import redraw_sample_report

    from pipeline.store.measurements import AlreadyDecided, NotReviewable

    stored = store.measurements.get(measurement_id)
    if stored is None:
        raise KeyError(f"no measurement {measurement_id}")
    if decision not in ("approve", "reject"):
        raise ValueError(f"decision must be approve or reject, not {decision!r}")
    if stored.measurement.qc.status != "review":        # refused before a password is asked (checked again below)
        raise NotReviewable(stored.measurement.qc.status)
    earlier = store.measurements.reviews(measurement_id)
    if earlier and not supersede:
        raise AlreadyDecided(earlier[-1])
    signed = authenticate(store, signer, f"measurement {measurement_id}")
    review = store.measurements.review(measurement_id, decision, reason, signer.name, supersede=supersede,
                                       signed=signed)
    signature = store.signatures.of("review_decisions", [review.id]).get(str(review.id)) if signed else None
    meas = store.measurements.get(measurement_id)
    history = store.screening.history(meas.patient_id) if meas is not None else []
    redraw_sample_report(store, reports, measurement_id)
    return Decided(review, signature, history[-1] if history else None)


@dataclass(frozen=True)
class Reprocessed:
    """A reprocessed file's result, the samples it finished, and the signature (None: single-user mode)."""

    result: "FileResult"
    finished: "list[FileResult]"
    signature: "SignatureRecord | None"


def reprocess(processor: "Processor", sha256: str, reason: str, signer: Signer,
              path: str | Path | None = None) -> Reprocessed:
    """Run a rejected file again as ``signer`` (:func:`pipeline.reprocess.reprocess`), finish the samples a
    now calibrated bead tube was holding, and sign the audited outcome. Raises
    :class:`pipeline.signing.SignatureRefused` before anything is done, and what
    that raises."""
    from pipeline.reprocess import reprocess as run_again

    store = processor.store
    signed = authenticate(store, signer, f"file {sha256}")
    result = run_again(processor, sha256, reason=reason, actor=signer.name, path=path)
    finished = processor.finish_pending() if result.status == "calibrated" else []
    processor.reports(finished)
    entry = store.audit.last_about(sha256) if signed else None
    signature = store.signatures.sign("audit_log", entry.seq, signer.name, "reprocessed") if entry else None
    return Reprocessed(result, finished, signature)
