"""The typed result of reading one FCS file: its header (what TEXT says: metadata, channels,
roles, kind) and, once decoded, its linear events."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import numpy as np

Kind = Literal["beads", "sample", "unknown"]
ROLE_NAMES = ("fsc_a", "fsc_h", "ssc_a", "ssc_h", "pe", "cd14")


def same_setting(a: float | None, b: float | None) -> bool:
    """Whether two detector settings ($PnV voltage or $PnG gain) are the same: None equals
    only None; numbers are equal within a relative 1e-6 (absolute 1e-9), so values that went
    through text, float32 or a database round trip still match."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


@dataclass(frozen=True)
class Channel:
    """One parameter ($Pn...) of the chosen data set."""

    index: int                 # 0-based column in ``Acquisition.events``
    name: str                  # $PnN
    label: str                 # $PnS ('' when absent)
    range: float               # $PnR
    bits: int                  # $PnB
    voltage: float | None      # $PnV (detector voltage)
    gain: float | None         # $PnG (amplifier gain; 1 when absent)
    log_decades: float         # first number of $PnE (0 = linear)
    log_offset: float          # second number of $PnE

    @property
    def is_time(self) -> bool:
        """The acquisition clock ($PnN 'Time'): kept in $TIMESTEP units, never divided by a gain."""
        return self.name.strip().lower() == "time"

    @property
    def linear_range(self) -> tuple[float, float]:
        """(low, high) of the channel's decoded linear values: offset .. offset * 10**decades
        for a log amplifier (FCS 3.1 $PnE; offset 0 read as 1), 0 .. $PnR / gain for a linear
        one, and 0 .. $PnR for the Time channel, which ``read_fcs`` does not divide by its gain
        (its $TIMESTEP scaling is not a channel keyword, so this range is in clock ticks)."""
        if self.log_decades > 0:
            offset = self.log_offset if self.log_offset > 0 else 1.0
            return offset, offset * 10.0 ** self.log_decades
        return 0.0, self.range / (1.0 if self.is_time else (self.gain or 1.0))

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "label": self.label, "range": self.range,
                "voltage": self.voltage, "gain": self.gain}


@dataclass(frozen=True)
class Roles:
    """Which channel (by $PnN) plays which part in the assay; None when absent."""

    fsc_a: str | None = None
    fsc_h: str | None = None
    ssc_a: str | None = None
    ssc_h: str | None = None
    pe: str | None = None
    cd14: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {r: getattr(self, r) for r in ROLE_NAMES}


@dataclass(frozen=True)
class Spillover:
    """A spillover matrix with its own channel order (may differ from the data's)."""

    keyword: str                    # '$SPILLOVER', 'SPILL' or '$SPILL'
    channels: tuple[str, ...]       # $PnN names, in the matrix's order
    matrix: np.ndarray              # square, rows = source, columns = detector


@dataclass(frozen=True)
class DataLayout:
    """Where a data set's events lie in the file and how they are stored (from TEXT)."""

    datatype: str                 # $DATATYPE: 'I', 'F' or 'D'
    little_endian: bool
    start: int                    # absolute byte offset of DATA
    length: int                   # bytes the declared events need
    packed: bool                  # odd widths packed back to back (else whole words)


@dataclass(frozen=True)
class Header:
    """One data set of one FCS file as its HEADER and TEXT describe it: hashed, checked, not decoded.

    Enough to tell a bead tube from a patient tube, to find the tube's calibration and to
    answer ``mhladr inspect``; :func:`pipeline.fcs.decode` turns it into an :class:`Acquisition`.
    """

    path: str
    sha256: str
    size: int
    fcs_version: str
    instrument: str | None          # $CYT
    serial: str | None              # $CYTSN
    acquired: datetime | None       # $DATE + $BTIM (or $DATETIMESTART)
    channels: tuple[Channel, ...]
    n_events: int                   # $TOT
    timestep: float | None          # $TIMESTEP: seconds per Time tick
    layout: DataLayout
    spillover: Spillover | None
    roles: Roles
    kind: Kind
    patient_id: str | None
    collection_date: date | None
    icu_admission: date | None      # 'ICU ADMISSION DATE' keyword, used only without a registry row
    bead_lot: str | None
    tube_name: str | None
    data_set: int                   # 0-based index of the data set read
    data_sets: int                  # how many data sets the file holds
    notes: tuple[str, ...]          # quirks met while reading
    collected_at: date | datetime | None = None   # the draw: COLLECTION DATE (+ COLLECTION TIME) keywords

    def channel(self, name: str) -> Channel:
        for ch in self.channels:
            if ch.name == name:
                return ch
        raise KeyError(name)


@dataclass(frozen=True, eq=False)
class Acquisition(Header):
    """A :class:`Header` with its events decoded to linear scale.

    ``events`` has one row per event and one column per channel (``channels[i].index == i``),
    float32 (``fcsio.data.EVENT_DTYPE``), log-amplified channels decoded
    (10**(decades*ch/range)*offset-rule) and divided by the amplifier gain, so every column is
    on a linear intensity scale. ``compensated``: the file's spillover (if any) was applied.
    """

    events: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))
    compensated: bool = True

    def column(self, name: str) -> np.ndarray:
        """The linear values of one channel (a view, not a copy)."""
        return self.events[:, self.channel(name).index]
