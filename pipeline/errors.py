"""Typed errors for unusable inputs.

Every input the pipeline cannot use ends as an :class:`InputError` with a reason code
from the Interfaces contract (``not_fcs``, ``truncated``, ``unsupported``, ``no_events``,
``wrong_panel``, ...) and a one-line message that names the file. The command line turns
it into exit code 2 and ``FILE: reason`` on stderr; the flows turn it into status
``rejected`` with the same reason.
"""

from __future__ import annotations

from pathlib import Path

from fcsio.errors import CORRUPT, NO_EVENTS, NOT_FCS, TRUNCATED, UNSUPPORTED  # noqa: F401 (one definition)

# Reason codes: the contract's and the ones this project adds; the FCS reader's (not_fcs,
# truncated, unsupported, no_events, corrupt) are defined by the reader (fcsio.errors).
WRONG_PANEL = "wrong_panel"
BAD_LOT = "bad_lot"            # unknown bead lot or wrong number of lot values
BAD_INPUT = "bad_input"        # a CSV or option that cannot be used
NO_BEADS = "no_beads"          # bead populations not found in a bead tube
BAD_SETTING = "bad_setting"    # a setting (settings file, MHLADR_* variable) that cannot be used
UNREACHABLE = "unreachable"    # a database or server named by a setting does not answer
USAGE = "usage"                # a command line that does not parse (missing or unknown option)
ALREADY_RUNNING = "already_running"  # a second `mhladr serve` on the same home


class InputError(Exception):
    """An input that cannot be used, with a reason code and the file it concerns."""

    def __init__(self, file: str | Path, code: str, message: str) -> None:
        self.file = str(file)
        self.code = code
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(f"{self.file}: {self.message}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        """Pickle by the constructor's arguments (errors cross from worker processes)."""
        return (InputError, (self.file, self.code, self.message))

    def as_dict(self) -> dict[str, str]:
        """The contract's ``{"error": {...}}`` body."""
        return {"file": self.file, "code": self.code, "message": self.message}
