"""QC vocabulary of the computational core (calibration, gating) and what joins them.

A QC record is a status (``pass`` < ``review`` < ``fail``) with the human-readable
reasons that led to it. Statuses combine by taking the worst one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

QCStatus = Literal["pass", "review", "fail"]
_ORDER: dict[str, int] = {"pass": 0, "review": 1, "fail": 2}


def worst(*statuses: QCStatus) -> QCStatus:
    """The most severe of the given statuses (``pass`` when none)."""
    return max(statuses, key=_ORDER.__getitem__, default="pass")


@dataclass(frozen=True)
class QC:
    """A QC outcome: status plus the reasons behind it (empty for a clean pass)."""

    status: QCStatus = "pass"
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @staticmethod
    def from_findings(findings: list[tuple[QCStatus, str]]) -> "QC":
        """Build a record from ``(status, reason)`` findings; the worst status wins."""
        status = worst(*(s for s, _ in findings))
        return QC(status=status, reasons=tuple(r for s, r in findings if s != "pass"))

    def merged(self, other: "QC") -> "QC":
        """This record combined with another one (worst status, reasons of both)."""
        return QC(status=worst(self.status, other.status), reasons=self.reasons + other.reasons)

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "reasons": list(self.reasons)}
