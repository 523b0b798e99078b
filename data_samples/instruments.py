"""Simulated cytometers: channel layout, PE response curve, detector noise and data encoding.

The PE response follows the QuantiBRITE calibration model (BD QuantiBRITE PE package insert;
Iyer et al., Cytometry 1998): log10(PE molecules) = a * log10(F) + b, so a cell or bead with M
molecules gives F = 10**((log10(M) - b) / a) at the reference voltage. A PMT's gain grows as a
power of its voltage (gain ~ V**k, k ~ 6-9 for 8-12 dynode tubes), so at voltage V the same
particle gives F * (V / V0)**k and the curve's intercept becomes b - a*k*log10(V/V0).
Photon statistics give a Poisson spread of the photoelectron count (n = F*q/gain), plus an
additive electronic noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_samples.fcs_writer import FcsParameter


@dataclass(frozen=True)
class ChannelSpec:
    """One detector channel of an instrument, with the role it plays in the assay."""

    name: str                      # $PnN
    role: str                      # fsc_a, fsc_h, ssc_a, ssc_h, pe, cd14, fl1, fl4, time
    label: str = ""                # $PnS
    voltage: float | None = None   # $PnV
    log_decades: float = 0.0       # 4 on a FACSCalibur's log amplifiers


@dataclass(frozen=True)
class Instrument:
    """A simulated cytometer and its true (hidden) detector response."""

    key: str                        # short name used in file names: CANTO, CALIBUR
    cytometer: str                  # $CYT
    serial: str                     # $CYTSN (FCS 3.1) or CYTNUM (CellQuest)
    creator: str                    # CREATOR keyword (acquisition software)
    fcs_version: str                # '3.1' (float, linear) or '2.0' (16-bit, 10-bit channels)
    channels: tuple[ChannelSpec, ...]
    range: int                      # $PnR of every channel
    pe_voltage: float               # reference PE voltage V0
    slope: float                    # true a at V0
    intercept: float                # true b at V0
    voltage_exponent: float         # k in gain ~ (V/V0)**k
    scatter_scale: float            # linear scatter units at full scale
    percp_per_molecule: float       # PerCP-Cy5.5 detector units per CD14 molecule
    photoelectrons_per_unit: float  # q: photoelectrons per detector unit at gain 1
    electronic_noise: float         # sd of the additive noise, detector units
    # Rows = source fluorochrome, columns = detector, both in ``spillover_roles`` order (the order
    # $SPILLOVER is written in, which need not be the data's); None = compensated in hardware.
    spillover: tuple[tuple[float, ...], ...] | None
    events_per_second: float        # acquisition rate (for Time and $ETIM)
    marker_labels: bool             # write the markers in $PnS by default (DIVA does; CellQuest often not)
    spillover_roles: tuple[str, ...] = ("pe", "cd14")
    big_endian: bool = False        # FCS 3.1 float data as $BYTEORD 4,3,2,1 instead of 1,2,3,4

    def channel_by_role(self, role: str) -> ChannelSpec:
        for ch in self.channels:
            if ch.role == role:
                return ch
        raise KeyError(role)

    @property
    def is_log(self) -> bool:
        return self.fcs_version == "2.0"

    def gain(self, voltage: float) -> float:
        """PE detector gain relative to the reference voltage."""
        return float((voltage / self.pe_voltage) ** self.voltage_exponent)

    def curve(self, voltage: float) -> tuple[float, float]:
        """True (slope, intercept) of log10(M) = slope*log10(F) + intercept at ``voltage``."""
        return self.slope, self.intercept - self.slope * np.log10(self.gain(voltage))

    def pe_signal(self, molecules: np.ndarray, voltage: float) -> np.ndarray:
        """Noise-free PE fluorescence (linear detector units) of particles with ``molecules`` PE."""
        m = np.asarray(molecules, dtype=float)
        slope, intercept = self.curve(voltage)
        out = np.zeros_like(m)
        pos = m > 0
        out[pos] = 10.0 ** ((np.log10(m[pos]) - intercept) / slope)
        return out

    def detect(self, signal: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
        """Add photoelectron (Poisson, normal approximation) and electronic noise."""
        s = np.asarray(signal, dtype=float)
        shot = np.sqrt(np.clip(s, 0.0, None) * gain / self.photoelectrons_per_unit)
        return s + shot * rng.standard_normal(s.shape) + self.electronic_noise * rng.standard_normal(s.shape)

    # --- scales -------------------------------------------------------------------------

    def log_max(self) -> float:
        """Largest value a 10-bit, 4-decade log channel can hold (channel range-1)."""
        return float(10.0 ** (4.0 * (self.range - 1) / self.range))

    def clip(self, spec: ChannelSpec, values: np.ndarray) -> np.ndarray:
        """Values as the instrument can represent them (saturation, log floor)."""
        if spec.log_decades:
            return np.clip(values, 1.0, 10.0 ** (spec.log_decades * (self.range - 1) / self.range))
        if self.is_log:
            return np.clip(values, 0.0, self.range - 1)
        low = 0.0 if spec.role in ("fsc_a", "fsc_h", "ssc_a", "ssc_h", "time") else -np.inf
        return np.clip(values, low, self.range - 1)

    def specs(self, with_cd14: bool = True) -> tuple[ChannelSpec, ...]:
        """The channels acquired (a tube without the CD14 stain has no PerCP-Cy5.5 parameter)."""
        return tuple(ch for ch in self.channels if with_cd14 or ch.role != "cd14")

    def parameters(self, specs: tuple[ChannelSpec, ...], pe_voltage: float,
                   labels: bool) -> tuple[FcsParameter, ...]:
        """The $Pn parameters written for ``specs`` at a PE voltage."""
        params = []
        for ch in specs:
            voltage = pe_voltage if ch.role == "pe" else ch.voltage
            label = ch.label if labels else ""
            if self.is_log:
                params.append(FcsParameter(ch.name, self.range, 16, label, ch.log_decades, 0.0, voltage))
            else:
                gain = None if ch.role == "time" else 1.0
                params.append(FcsParameter(ch.name, self.range, 32, label, 0.0, 0.0, voltage, gain))
        return tuple(params)


def encode_channels(parameters: tuple[FcsParameter, ...], events: np.ndarray) -> np.ndarray:
    """Linear values -> integer channel numbers ($PnE f1,0: value = 10**(f1*ch/$PnR))."""
    out = np.empty(events.shape, dtype=np.int64)
    for j, p in enumerate(parameters):
        v = events[:, j]
        if p.log_decades:
            ch = np.rint(np.log10(np.clip(v, 1.0, None)) * p.range / p.log_decades)
        else:
            ch = np.rint(v)
        out[:, j] = np.clip(ch, 0, p.range - 1)
    return out


def decode_channels(parameters: tuple[FcsParameter, ...], channels: np.ndarray) -> np.ndarray:
    """Integer channel numbers -> linear values (a CellQuest $PnE of f1,0 read as f1,1)."""
    out = np.empty(channels.shape, dtype=float)
    for j, p in enumerate(parameters):
        c = channels[:, j].astype(float)
        out[:, j] = 10.0 ** (p.log_decades * c / p.range) if p.log_decades else c
    return out


# The reference PE curves put the four QuantiBRITE levels (474..67,601) and cells of 500..60,000
# AB/C well inside each scale: CANTO ~250 -> ~33,000 of 262,144; CALIBUR ~15 -> ~2,500 of 10**4.
CANTO = Instrument(
    key="CANTO",
    cytometer="FACSCanto II",
    serial="V96300123",
    creator="BD FACSDiva Software Version 8.0.1",
    fcs_version="3.1",
    channels=(
        ChannelSpec("FSC-A", "fsc_a", voltage=350.0),
        ChannelSpec("FSC-H", "fsc_h", voltage=350.0),
        ChannelSpec("SSC-A", "ssc_a", voltage=460.0),
        ChannelSpec("SSC-H", "ssc_h", voltage=460.0),
        ChannelSpec("PE-A", "pe", label="HLA-DR", voltage=450.0),
        ChannelSpec("PerCP-Cy5-5-A", "cd14", label="CD14", voltage=560.0),
        ChannelSpec("Time", "time"),
    ),
    range=262144,
    pe_voltage=450.0,
    slope=1.02,
    intercept=0.23,
    voltage_exponent=7.0,
    scatter_scale=262144.0,
    percp_per_molecule=0.3,
    photoelectrons_per_unit=4.0,
    electronic_noise=8.0,
    spillover=((1.0, 0.15), (0.02, 1.0)),
    events_per_second=1500.0,
    marker_labels=True,
)

CALIBUR = Instrument(
    key="CALIBUR",
    cytometer="FACSCalibur",
    serial="E3421",
    creator="CellQuest Pro 6.0",
    fcs_version="2.0",
    channels=(
        ChannelSpec("FSC-H", "fsc_h"),
        ChannelSpec("SSC-H", "ssc_h", voltage=350.0),
        ChannelSpec("FL1-H", "fl1", voltage=600.0, log_decades=4.0),
        ChannelSpec("FL2-H", "pe", label="HLA-DR PE", voltage=550.0, log_decades=4.0),
        ChannelSpec("FL3-H", "cd14", label="CD14 PerCP-Cy5.5", voltage=650.0, log_decades=4.0),
        ChannelSpec("FL4-H", "fl4", voltage=700.0, log_decades=4.0),
    ),
    range=1024,
    pe_voltage=550.0,
    slope=0.97,
    intercept=1.535,
    voltage_exponent=7.0,
    scatter_scale=1024.0,
    percp_per_molecule=0.005,
    photoelectrons_per_unit=40.0,
    electronic_noise=0.3,
    spillover=None,
    events_per_second=800.0,
    marker_labels=False,
)

# A third flavour, FACSLyric-like: FCS 3.1 big-endian floats on a 2**20 scale, markers in $PnS,
# four fluorescence detectors and a $SPILLOVER written in another channel order than the data.
LYRIC = Instrument(
    key="LYRIC",
    cytometer="BD FACSLyric",
    serial="R658100021",
    creator="BD FACSuite Application v1.5",
    fcs_version="3.1",
    channels=(
        ChannelSpec("FSC-A", "fsc_a", voltage=300.0),
        ChannelSpec("FSC-H", "fsc_h", voltage=300.0),
        ChannelSpec("SSC-A", "ssc_a", voltage=420.0),
        ChannelSpec("SSC-H", "ssc_h", voltage=420.0),
        ChannelSpec("FITC-A", "fl1", voltage=480.0),
        ChannelSpec("PE-A", "pe", label="HLA-DR", voltage=500.0),
        ChannelSpec("PerCP-Cy5.5-A", "cd14", label="CD14", voltage=600.0),
        ChannelSpec("APC-A", "fl4", voltage=560.0),
        ChannelSpec("Time", "time"),
    ),
    range=1048576,
    pe_voltage=500.0,
    slope=0.99,
    intercept=-0.29,
    voltage_exponent=7.5,
    scatter_scale=1048576.0,
    percp_per_molecule=0.8,
    photoelectrons_per_unit=2.0,
    electronic_noise=25.0,
    # rows/columns: PerCP-Cy5.5, APC, FITC, PE (the data hold FITC, PE, PerCP-Cy5.5, APC)
    spillover=((1.0, 0.18, 0.0, 0.01),
               (0.02, 1.0, 0.0, 0.0),
               (0.03, 0.0, 1.0, 0.22),
               (0.12, 0.004, 0.01, 1.0)),
    events_per_second=1200.0,
    marker_labels=True,
    spillover_roles=("cd14", "fl4", "fl1", "pe"),
    big_endian=True,
)

INSTRUMENTS = {i.key: i for i in (CANTO, CALIBUR, LYRIC)}
