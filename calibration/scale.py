"""The scale of a channel, which beads and sample must share for the bead curve to apply.

A bead curve converts numbers of one scale: the same detector voltage ($PnV) and amplifier
gain ($PnG), the same amplifier (linear, or log over $PnE decades), the same range ($PnR,
which fixes a log channel's decoding 10^(decades * channel / range)) and the same data
type ($DATATYPE). DESIGN.md asks for the same voltages, gains and scale; a difference in any
of them changes the number a bead or a cell gives for the same light, by a factor the curve
cannot know. Voltage is compared where beads and sample are paired (pipeline's
``pairing_findings``); this module compares the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from science.qc import QCStatus


@dataclass(frozen=True)
class ChannelScale:
    """The scale keywords of one channel, as read from its file (None when not stated)."""

    channel: str
    datatype: str | None = None      # $DATATYPE: I, F, D
    bits: int | None = None          # $PnB
    range: float | None = None       # $PnR
    log_decades: float = 0.0         # $PnE first value (0 = linear amplifier)
    log_offset: float = 0.0          # $PnE second value
    gain: float | None = None        # $PnG

    @property
    def amplifier(self) -> str:
        return (f"$PnE {self.log_decades:g},{self.log_offset:g} "
                + ("(linear)" if self.log_decades == 0 else f"({self.log_decades:g}-decade log)"))

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "datatype": self.datatype, "bits": self.bits, "range": self.range,
                "log_decades": self.log_decades, "log_offset": self.log_offset, "gain": self.gain}


def _differ(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def scale_findings(beads: ChannelScale, sample: ChannelScale) -> list[tuple[QCStatus, str]]:
    """A ``fail`` finding for each scale setting beads and sample do not share, naming both."""
    findings: list[tuple[QCStatus, str]] = []
    if beads.datatype and sample.datatype and beads.datatype.upper() != sample.datatype.upper():
        findings.append(("fail", f"data type differs: beads $DATATYPE {beads.datatype}, "
                                 f"sample $DATATYPE {sample.datatype}"))
    if _differ(beads.log_decades, sample.log_decades) or _differ(beads.log_offset, sample.log_offset):
        findings.append(("fail", f"PE amplifier differs: beads {beads.channel} {beads.amplifier}, "
                                 f"sample {sample.channel} {sample.amplifier}"))
    if _differ(beads.range, sample.range):
        findings.append(("fail", f"PE range differs: beads {beads.channel} $PnR {beads.range:g}, "
                                 f"sample {sample.channel} $PnR {sample.range:g}"
                         if beads.range is not None and sample.range is not None else
                         f"PE range stated for one tube only: beads $PnR {beads.range}, sample $PnR {sample.range}"))
    if beads.bits is not None and sample.bits is not None and beads.bits != sample.bits:
        findings.append(("fail", f"PE bit width differs: beads $PnB {beads.bits}, sample $PnB {sample.bits}"))
    if _differ(beads.gain if beads.gain is not None else 1.0, sample.gain if sample.gain is not None else 1.0):
        findings.append(("fail", f"PE amplifier gain differs: beads $PnG {beads.gain:g}, "
                                 f"sample $PnG {sample.gain:g}"
                         if beads.gain is not None and sample.gain is not None else
                         f"PE amplifier gain differs: beads $PnG {beads.gain}, sample $PnG {sample.gain}"))
    return findings
