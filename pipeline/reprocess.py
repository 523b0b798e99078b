"""Running a ``rejected`` file again once its cause is fixed (``mhladr reprocess``; audited)."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import BAD_INPUT, InputError
from pipeline.processing import Processor, unusable
from pipeline.result_documents import FileResult
from pipeline.tubes import Examine, examine


def reprocess(processor: Processor, sha256: str, *, reason: str, actor: str,
              path: str | Path | None = None) -> FileResult:
    """Process a ``rejected`` file again after its cause was fixed (e.g. a lot added to
    lots.csv, the file renamed to carry its lot); a re-run never does this by itself.
    ``path``: where the file is now, when it was moved or renamed since (the store is told,
    audited). The new outcome and who asked, and why, go to the audit trail."""
    rec = processor.store.files.original(sha256)
    if rec is None:
        raise InputError(path or sha256, BAD_INPUT, "this content was never processed: give it to mhladr run "
                                                    "(or check the SHA-256)")
    if rec.status != "rejected":
        raise InputError(rec.path, BAD_INPUT, f"only rejected files are reprocessed (this one is {rec.status}): "
                                              f"see mhladr results --file {rec.path}")
    note = f"reprocessed by {actor}: {reason}"
    if path is not None and str(Path(path).resolve()) != rec.path:
        rec = processor.store.files.relocate(sha256, Path(path).resolve(), actor=actor) or rec
    if not Path(rec.path).is_file():
        raise InputError(rec.path, BAD_INPUT, "the file is no longer here: give the path where it is now, "
                                              "mhladr reprocess PATH --reason TEXT")
    e = examine(Examine(rec.path, processor.settings))
    if e.sha256 != sha256:
        raise InputError(rec.path, BAD_INPUT, "the file at this path has changed since it was rejected")
    header = e.header
    if header is not None and header.kind == "beads":
        result = next(iter(processor.calibrate([e], actor=actor, note=note).values()))
    elif e.error is None and unusable(header) is None:
        result = next(iter(processor.measure([e], actor=actor, note=note).values()))
    else:
        return processor.reject(e, e.error or unusable(header), actor=actor, note=note)  # type: ignore[arg-type]
    processor.reports([result])
    return result
