"""One qualification check: what was compared with what criterion, what was observed, pass/fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """A check of ``stage`` (IQ or OQ): ``criterion`` is the acceptance criterion, ``observed`` what
    this machine showed; ``passed`` None = not run (a slot waiting for a release, with why)."""

    stage: str
    name: str
    criterion: str
    observed: str
    passed: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "name": self.name, "criterion": self.criterion, "observed": self.observed,
                "result": {True: "pass", False: "fail", None: "not run"}[self.passed]}


def check(stage: str, name: str, criterion: str, observed: object, passed: bool | None) -> Check:
    return Check(stage, name, criterion, str(observed), passed)
