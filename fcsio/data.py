"""Decoding an FCS DATA segment into a float64 event matrix of linear values.

Closes flowio 1.4's gap in one place: it decodes integer data of any byte-aligned width
(8, 16, 24, 32, 64 bits, mixed in one record), odd widths stored in whole words (Beckman
FC500 list mode: $PnB=10 in 16-bit words) or bit-packed when the offsets say so, masks unused high bits ($PnR below 2**$PnB, FCS 3.1 sec. 3.3.40),
and decodes log-amplified channels ($PnE f1,f2: value = f2 * 10**(f1 * x / $PnR), with
f2 = 0 read as 1 as FCS 3.1 sec. 3.3.34 allows for legacy files) and amplifier gain
($PnG, linear channels only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fcsio.errors import UNSUPPORTED, FcsError
from fcsio.segments import DataSet, storage_bits

# float32 holds every value a cytometer writes (float32 data, integers up to 24 bits exactly) at
# half the memory of float64; statistics and fits cast the small subsets they use to float64.
EVENT_DTYPE = np.float32


@dataclass(frozen=True)
class Layout:
    """How the events are stored: data type, byte order and per-channel widths/ranges."""

    datatype: str                 # 'I', 'F' or 'D'
    little_endian: bool
    bits: tuple[int, ...]
    ranges: tuple[float, ...]
    events: int
    packed: bool = False          # odd widths packed back to back instead of in whole words


def byte_order(byteord: str, file: str) -> bool:
    """True for little-endian $BYTEORD ('1,2,3,4', '1,2'), False for big-endian."""
    order = [p.strip() for p in byteord.split(",") if p.strip()]
    if order and all(p.isdigit() for p in order):
        if order == sorted(order, key=int):
            return True
        if order == sorted(order, key=int, reverse=True):
            return False
    raise FcsError(file, UNSUPPORTED, f"byte order $BYTEORD={byteord!r} is not supported")


def decode_raw(buffer: memoryview | bytes, layout: Layout, file: str) -> np.ndarray:
    """The stored values as ``EVENT_DTYPE`` (events x channels), before any scale decoding."""
    n_ch = len(layout.bits)
    if layout.events == 0:
        return np.zeros((0, n_ch), dtype=EVENT_DTYPE)
    endian = "<" if layout.little_endian else ">"
    if layout.datatype in ("F", "D"):
        width = 4 if layout.datatype == "F" else 8
        if any(b != width * 8 for b in layout.bits):
            raise FcsError(file, UNSUPPORTED, f"$DATATYPE {layout.datatype} with $PnB {sorted(set(layout.bits))}")
        dtype = np.dtype(f"{endian}f{width}")
        return np.frombuffer(buffer, dtype=dtype, count=layout.events * n_ch) \
            .reshape(layout.events, n_ch).astype(EVENT_DTYPE)
    if layout.datatype != "I":
        raise FcsError(file, UNSUPPORTED, f"$DATATYPE {layout.datatype!r} is not supported")
    if layout.packed:
        values = _bit_packed_ints(buffer, layout)
    else:
        values = _byte_aligned_ints(buffer, layout, endian)
    full = np.array([(1 << b) - 1 for b in layout.bits], dtype=np.uint64)
    masks = np.array([_mask(b, r) for b, r in zip(layout.bits, layout.ranges)], dtype=np.uint64)
    if np.any(masks != full):
        values = values & masks.astype(values.dtype)
    return values.astype(EVENT_DTYPE)


def data_type(ds: DataSet, file: str, notes: list[str]) -> str:
    """$DATATYPE, or integer when it is missing and the $PnB widths can only be integers (noted)."""
    raw = ds.text.get("$DATATYPE", "").strip().upper()
    if raw:
        return raw
    widths = set(ds.bits)
    if widths <= {8, 16, 24} or any(w % 8 for w in widths):
        notes.append("$DATATYPE missing; integer data inferred from $PnB")
        return "I"
    raise FcsError(file, UNSUPPORTED, f"$DATATYPE missing and $PnB {sorted(widths)} do not say integer or float")


def _mask(bits: int, rng: float) -> int:
    """Mask keeping the bits $PnR needs (next power of two of $PnR, FCS 3.1 3.3.40)."""
    full = (1 << bits) - 1
    if rng <= 0:
        return full
    need = max(int(np.ceil(np.log2(rng))), 1) if rng > 1 else 1
    return min(full, (1 << need) - 1)


def _byte_aligned_ints(buffer: memoryview | bytes, layout: Layout, endian: str) -> np.ndarray:
    """Whole-byte values; uniform 8/16/32/64-bit records are read as they lie (a read-only view)."""
    widths = [storage_bits(b) // 8 for b in layout.bits]
    if len(set(widths)) == 1 and widths[0] in (1, 2, 4, 8):
        dtype = np.dtype(f"{endian}u{widths[0]}")
        return np.frombuffer(buffer, dtype=dtype, count=layout.events * len(widths)) \
            .reshape(layout.events, len(widths))
    row = sum(widths)
    raw = np.frombuffer(buffer, dtype=np.uint8, count=layout.events * row).reshape(layout.events, row)
    out = np.zeros((layout.events, len(widths)), dtype=np.uint64 if max(widths) > 4 else np.uint32)
    start = 0
    for col, width in enumerate(widths):
        order = range(start, start + width) if endian == ">" else range(start + width - 1, start - 1, -1)
        for k in order:
            out[:, col] = (out[:, col] << 8) | raw[:, k]
        start += width
    return out


def _bit_packed_ints(buffer: memoryview | bytes, layout: Layout) -> np.ndarray:
    """Values packed back to back in a bit stream, most significant bit first."""
    total_bits = layout.events * sum(layout.bits)
    stream = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8, count=(total_bits + 7) // 8))
    stream = stream[:total_bits].reshape(layout.events, sum(layout.bits))
    out = np.zeros((layout.events, len(layout.bits)), dtype=np.uint64)
    start = 0
    for col, width in enumerate(layout.bits):
        weights = (np.uint64(1) << np.arange(width - 1, -1, -1, dtype=np.uint64))
        out[:, col] = stream[:, start:start + width].astype(np.uint64) @ weights
        start += width
    return out


def to_linear(values: np.ndarray, datatype: str, ranges: tuple[float, ...],
              log: tuple[tuple[float, float], ...], gains: tuple[float, ...]) -> np.ndarray:
    """Decode stored values to a linear scale, in place.

    Integer channels with $PnE decades > 0: f2 * 10**(f1 * x / $PnR) (computed in float64).
    Float data are linear by definition (FCS 3.1: $PnE must be 0,0 for F/D), whatever $PnE
    says. Linear channels are divided by their gain $PnG.
    """
    for col, ((decades, offset), rng, gain) in enumerate(zip(log, ranges, gains)):
        if datatype == "I" and decades > 0 and rng > 0:
            exponent = values[:, col].astype(np.float64) * (decades / rng)
            values[:, col] = (offset if offset > 0 else 1.0) * np.power(10.0, exponent)
        elif gain and gain != 1.0:
            values[:, col] /= gain
    return values
