"""The typed result of reading one FCS file: metadata, channels, roles and linear events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import numpy as np

Kind = Literal["beads", "sample", "unknown"]
ROLE_NAMES = ("fsc_a", "fsc_h", "ssc_a", "ssc_h", "pe", "cd14")


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
class Acquisition:
    """One data set of one FCS file, decoded to linear scale.

    ``events`` has one row per event and one column per channel (``channels[i].index == i``),
    float32 (``pipeline.fcs_data.EVENT_DTYPE``), log-amplified channels decoded (10**(decades*ch/range)*offset-rule) and
    divided by the amplifier gain, so every column is on a linear intensity scale.
    """

    path: str
    sha256: str
    size: int
    fcs_version: str
    instrument: str | None          # $CYT
    serial: str | None              # $CYTSN
    acquired: datetime | None       # $DATE + $BTIM (or $DATETIMESTART)
    channels: tuple[Channel, ...]
    events: np.ndarray
    spillover: Spillover | None
    compensated: bool               # True when the events are compensated (matrix applied, or none to apply)
    roles: Roles
    kind: Kind
    patient_id: str | None
    collection_date: date | None
    icu_admission: date | None      # 'ICU ADMISSION DATE' keyword, used only without a registry row
    bead_lot: str | None
    tube_name: str | None
    data_set: int                   # 0-based index of the data set read
    data_sets: int                  # how many data sets the file holds
    notes: tuple[str, ...] = field(default_factory=tuple)  # quirks met while reading

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    def channel(self, name: str) -> Channel:
        for ch in self.channels:
            if ch.name == name:
                return ch
        raise KeyError(name)

    def column(self, name: str) -> np.ndarray:
        """The linear values of one channel (a view, not a copy)."""
        return self.events[:, self.channel(name).index]
