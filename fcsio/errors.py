"""Why an FCS file cannot be read: :class:`FcsError`, with a reason code and the file's name.

The codes are the project's contract codes for unusable files (DESIGN.md, Interfaces), so a
caller can pass them on unchanged.
"""

from __future__ import annotations

from pathlib import Path

NOT_FCS = "not_fcs"
TRUNCATED = "truncated"
UNSUPPORTED = "unsupported"
NO_EVENTS = "no_events"
CORRUPT = "corrupt"            # an FCS file whose TEXT or offsets contradict themselves


class FcsError(Exception):
    """An FCS file that cannot be read, with a reason code and the file it concerns."""

    def __init__(self, file: str | Path, code: str, message: str) -> None:
        self.file = str(file)
        self.code = code
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(f"{self.file}: {self.message}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        """Pickle by the constructor's arguments (errors cross from worker processes)."""
        return (FcsError, (self.file, self.code, self.message))
