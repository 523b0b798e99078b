"""A small FCS writer: FCS 3.1 list-mode float data (either byte order) and FCS 2.0 16-bit integers.

Follows the Data File Standard for Flow Cytometry, Version FCS 3.1 (Spidlen et al.,
Cytometry A 2010; 77A:97-100) and, for the older flavour, FCS 2.0 (Murphy & Chused 1984/1990):

- HEADER: version id, four spaces, then six byte offsets (TEXT, DATA, ANALYSIS begin/end,
  end offsets inclusive) right-justified in 8-character fields; an offset above 99,999,999 is
  written as 0 and given only in TEXT ($BEGINDATA/$ENDDATA, FCS 3.x).
- TEXT: a delimiter ('/'), then keyword/value pairs each followed by the delimiter; a delimiter
  inside a keyword or value is escaped by doubling it. Values may not be empty (FCS 3.1), nor
  start with the delimiter (which would make the escape ambiguous).
- FCS 3.x TEXT holds its own DATA offsets, whose digit count moves DATA: the offsets are
  recomputed until they no longer change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DELIMITER = "/"
_HEADER_FIELD = 8
_MAX_HEADER_OFFSET = 99_999_999


@dataclass(frozen=True)
class FcsParameter:
    """One $Pn parameter as written to TEXT."""

    name: str                        # $PnN
    range: int                       # $PnR
    bits: int                        # $PnB
    label: str = ""                  # $PnS (omitted when empty)
    log_decades: float = 0.0         # $PnE first number (0 = linear)
    log_offset: float = 0.0          # $PnE second number
    voltage: float | None = None     # $PnV
    gain: float | None = None        # $PnG

    def keywords(self, n: int) -> list[tuple[str, str]]:
        """The $Pn keywords of this parameter in a stable order."""
        kw = [(f"$P{n}N", self.name)]
        if self.label:
            kw.append((f"$P{n}S", self.label))
        kw += [(f"$P{n}B", str(self.bits)), (f"$P{n}E", f"{_num(self.log_decades)},{_num(self.log_offset)}"),
               (f"$P{n}R", str(self.range))]
        if self.voltage is not None:
            kw.append((f"$P{n}V", _num(self.voltage)))
        if self.gain is not None:
            kw.append((f"$P{n}G", _num(self.gain)))
        return kw


def _num(value: float) -> str:
    """A short, exact-enough decimal for a keyword value (integers without a decimal point)."""
    return f"{float(value):.10g}"


def spillover_value(names: Sequence[str], matrix: np.ndarray) -> str:
    """The FCS 3.1 $SPILLOVER value: n, the n $PnN names, then the n*n values row by row."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (len(names), len(names)):
        raise ValueError(f"spillover matrix shape {m.shape} does not match {len(names)} channels")
    return ",".join([str(len(names)), *names, *(_num(v) for v in m.ravel())])


def _escape(text: str) -> str:
    if text == "":
        raise ValueError("FCS keyword values must not be empty")
    if text.startswith(DELIMITER):
        # After a delimiter, a doubled delimiter would read as an escape of the previous token.
        raise ValueError(f"FCS keywords and values cannot start with the delimiter: {text!r}")
    return text.replace(DELIMITER, DELIMITER * 2)


def _text_segment(pairs: Sequence[tuple[str, str]]) -> bytes:
    body = "".join(f"{_escape(k)}{DELIMITER}{_escape(v)}{DELIMITER}" for k, v in pairs)
    return (DELIMITER + body).encode("utf-8")


def _header(version: str, text_begin: int, text_end: int, data_begin: int, data_end: int,
            size: int) -> bytes:
    offsets = [text_begin, text_end, data_begin, data_end, 0, 0]
    fields = "".join(str(o if o <= _MAX_HEADER_OFFSET else 0).rjust(_HEADER_FIELD) for o in offsets)
    head = f"FCS{version}    {fields}".encode("ascii")
    if len(head) > size:
        raise ValueError("HEADER does not fit")
    return head.ljust(size, b" ")


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        upper = key.upper()
        if upper in seen:
            raise ValueError(f"duplicate FCS keyword {key!r}")
        seen.add(upper)


def fcs_bytes(version: str, parameters: Sequence[FcsParameter], data: bytes, n_events: int,
              datatype: str, byteord: str, keywords: Mapping[str, str], *,
              header_size: int = 58) -> bytes:
    """Assemble HEADER + TEXT + DATA for one list-mode data set.

    ``keywords`` are written after the required ones, in their given order. For FCS 3.x the
    $BEGINDATA/$ENDDATA (and empty ANALYSIS/STEXT) keywords are added and made consistent
    with the HEADER.
    """
    if version not in ("2.0", "3.0", "3.1"):
        raise ValueError(f"unsupported FCS version {version}")
    required = [("$BYTEORD", byteord), ("$DATATYPE", datatype), ("$MODE", "L"),
                ("$NEXTDATA", "0"), ("$PAR", str(len(parameters))), ("$TOT", str(n_events))]
    param_kw = [kv for n, p in enumerate(parameters, start=1) for kv in p.keywords(n)]
    custom = list(keywords.items())
    text_begin = header_size
    data_begin = data_end = 0
    while True:
        offsets: list[tuple[str, str]] = []
        if version != "2.0":
            offsets = [("$BEGINANALYSIS", "0"), ("$ENDANALYSIS", "0"), ("$BEGINSTEXT", "0"),
                       ("$ENDSTEXT", "0"), ("$BEGINDATA", str(data_begin)), ("$ENDDATA", str(data_end))]
        pairs = offsets + required + param_kw + custom
        _check_pairs(pairs)
        text = _text_segment(pairs)
        text_end = text_begin + len(text) - 1
        new_begin = text_end + 1 if data else 0
        new_end = new_begin + len(data) - 1 if data else 0
        if (new_begin, new_end) == (data_begin, data_end):
            break
        data_begin, data_end = new_begin, new_end
    header = _header(version, text_begin, text_end, data_begin, data_end, header_size)
    return header + text + data


def fcs31_float_bytes(parameters: Sequence[FcsParameter], events: np.ndarray,
                      keywords: Mapping[str, str], *, big_endian: bool = False) -> bytes:
    """FCS 3.1, $DATATYPE F, 32-bit floats, linear $PnE 0,0; little-endian ($BYTEORD 1,2,3,4)
    or big-endian ($BYTEORD 4,3,2,1)."""
    arr = np.asarray(events)
    if arr.ndim != 2 or arr.shape[1] != len(parameters):
        raise ValueError("events must have one column per parameter")
    if any(p.bits != 32 or p.log_decades != 0 for p in parameters):
        raise ValueError("float data need $PnB 32 and linear $PnE 0,0")
    data = np.ascontiguousarray(arr, dtype=">f4" if big_endian else "<f4").tobytes()
    return fcs_bytes("3.1", parameters, data, arr.shape[0], "F", "4,3,2,1" if big_endian else "1,2,3,4",
                     keywords)


def fcs20_int16_bytes(parameters: Sequence[FcsParameter], channels: np.ndarray,
                      keywords: Mapping[str, str]) -> bytes:
    """FCS 2.0, $DATATYPE I, big-endian ($BYTEORD 4,3,2,1) 16-bit channel numbers.

    The HEADER is padded to 256 bytes, as CellQuest writes it.
    """
    arr = np.asarray(channels)
    if arr.ndim != 2 or arr.shape[1] != len(parameters):
        raise ValueError("channels must have one column per parameter")
    if any(p.bits != 16 for p in parameters):
        raise ValueError("16-bit integer data need $PnB 16")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("channel numbers must be integers")
    ranges = np.array([p.range for p in parameters])
    if arr.size and (arr.min() < 0 or np.any(arr >= ranges)):
        raise ValueError("channel numbers must lie in 0..$PnR-1")
    data = np.ascontiguousarray(arr, dtype=">u2").tobytes()
    return fcs_bytes("2.0", parameters, data, arr.shape[0], "I", "4,3,2,1", keywords, header_size=256)


def write_bytes(path: str | Path, content: bytes) -> Path:
    """Write a finished FCS byte string to ``path`` (parents created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(content)
    return out
