"""FCS file structure: HEADER, TEXT keywords, the chain of data sets and where DATA lies.

Follows the Data File Standard for Flow Cytometry (FCS 2.0, 3.0, 3.1; ISAC), plus the
tolerances real instruments need (J. Spidlen's notes in the cytoflow test data): blank
HEADER offsets (FCS 3.x files over 99,999,999 bytes), TEXT/HEADER offset discrepancies,
DATA end offsets off by one byte, several data sets chained by ``$NEXTDATA``.

Nothing here allocates more than the file holds: every offset is checked against the
file size before a byte is read.
"""

from __future__ import annotations

import hashlib
import mmap
from dataclasses import dataclass, replace
from pathlib import Path

from fcsio.errors import CORRUPT, NOT_FCS, TRUNCATED, UNSUPPORTED, FcsError

HEADER_SIZE = 58
SUPPORTED_VERSIONS = ("FCS2.0", "FCS3.0", "FCS3.1", "FCS3.2")
MAX_DATA_SETS = 16
MAX_PARAMETERS = 5000


@dataclass(frozen=True)
class DataSet:
    """One data set: its version, TEXT keywords (upper-case keys), the checked $PAR, $TOT and
    $PnB (parsed once, by :func:`declared_widths`) and resolved DATA bytes."""

    version: str                    # '2.0', '3.0', '3.1', '3.2'
    text: dict[str, str]
    par: int                        # $PAR
    tot: int                        # $TOT (events)
    bits: tuple[int, ...]           # $PnB per parameter
    data_start: int                 # absolute, inclusive
    data_length: int                # bytes the keywords say the events need
    packed: bool                    # odd $PnB widths packed back to back (else stored in whole words)
    notes: tuple[str, ...]


def _header_int(raw: bytes) -> int:
    """An ASCII offset of the HEADER; blank fields mean 0 (FCS 3.x, large files)."""
    text = raw.decode("ascii", errors="replace").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def parse_text_segment(raw: bytes) -> dict[str, str]:
    """Split a TEXT segment into keywords (upper-case, stripped) and values.

    The first byte is the delimiter; a doubled delimiter inside a keyword or value stands
    for the delimiter itself (FCS 3.1, section 3.2.9).
    """
    if len(raw) < 2:
        raise ValueError("TEXT segment is empty")
    delim = raw[0:1]
    body = raw[1:]
    tokens: list[bytes] = []
    current = bytearray()
    i, n = 0, len(body)
    while i < n:
        j = body.find(delim, i)
        if j < 0:
            current += body[i:]
            break
        current += body[i:j]
        if j + 1 < n and body[j + 1:j + 2] == delim:
            current += delim
            i = j + 2
            continue
        tokens.append(bytes(current))
        current = bytearray()
        i = j + 1
    if current.strip():
        tokens.append(bytes(current))
    if len(tokens) % 2 == 1 and not tokens[-1].strip():
        tokens.pop()
    if len(tokens) < 2:
        raise ValueError("TEXT segment holds no keyword/value pairs")
    text: dict[str, str] = {}
    for key, value in zip(tokens[0::2], tokens[1::2]):
        k = _decode(key).strip().upper()
        if k:
            text.setdefault(k, _decode(value).strip())
    return text


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _kw_int(text: dict[str, str], key: str) -> int | None:
    raw = text.get(key, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        try:
            return int(float(raw))
        except ValueError:
            return None


def storage_bits(bits: int) -> int:
    """Bits a value occupies when odd widths are stored in whole words (e.g. $PnB=10 in 16 bits)."""
    return bits if bits % 8 == 0 else next(w for w in (8, 16, 32, 64) if w >= bits)


def declared_widths(text: dict[str, str], file: str) -> tuple[int, int, tuple[int, ...]]:
    """($PAR, $TOT, $PnB per parameter), checked for plausibility."""
    par = _kw_int(text, "$PAR")
    tot = _kw_int(text, "$TOT")
    if par is None or tot is None:
        raise FcsError(file, CORRUPT, "TEXT lacks a usable $PAR or $TOT keyword")
    if not 0 < par <= MAX_PARAMETERS or tot < 0:
        raise FcsError(file, CORRUPT, f"implausible $PAR={par} or $TOT={tot}")
    bits = []
    for n in range(1, par + 1):
        if text.get(f"$P{n}B", "").strip() == "*":
            raise FcsError(file, UNSUPPORTED, "ASCII data with delimited values ($PnB=*) is not supported")
        width = _kw_int(text, f"$P{n}B")
        if width is None or not 0 < width <= 64:
            raise FcsError(file, CORRUPT, f"parameter {n} has no usable $P{n}B bit width")
        bits.append(width)
    return par, tot, tuple(bits)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex; FIPS 180-4) of a file's bytes: the one routine that gives a file its identity
    (the store's key), whether the file is then read (:meth:`FcsFile.sha256`) or not."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class FcsFile:
    """An FCS file opened read-only through a memory map (no copy of the file in memory)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(path)
        with self.path.open("rb") as fh:
            self.size = self.path.stat().st_size
            if self.size < HEADER_SIZE:
                raise FcsError(self.name, NOT_FCS, f"not an FCS file ({self.size} bytes, no FCS HEADER)")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def close(self) -> None:
        self._map.close()

    def sha256(self) -> str:
        """SHA-256 (hex) of the whole file (:func:`sha256_file`, the one hash a file gets)."""
        return sha256_file(self.path)

    def __enter__(self) -> "FcsFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bytes(self, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)``, checked against the file size."""
        if start < 0 or stop > self.size or stop < start:
            raise FcsError(self.name, TRUNCATED, f"file ends at byte {self.size}, segment needs {start}..{stop}")
        return self._map[start:stop]

    def view(self, start: int, length: int) -> memoryview:
        """A zero-copy view of ``length`` bytes from ``start`` (release it before closing)."""
        if start < 0 or start + length > self.size:
            raise FcsError(self.name, TRUNCATED,
                           f"DATA needs bytes {start}..{start + length} but the file has {self.size}")
        return memoryview(self._map)[start:start + length]

    # -- data sets ---------------------------------------------------------------------
    def data_sets(self) -> list[DataSet]:
        """Every data set of the file, following ``$NEXTDATA`` (bounded, forward only)."""
        sets: list[DataSet] = []
        offset = 0
        while True:
            sets.append(self._data_set(offset, first=not sets))
            nxt = _kw_int(sets[-1].text, "$NEXTDATA") or 0
            if nxt <= 0:
                return sets
            target = offset + nxt
            if target <= offset or target + HEADER_SIZE > self.size or len(sets) >= MAX_DATA_SETS:
                note = f"$NEXTDATA={nxt} points outside the file; ignored"
            elif self._map[target:target + 3] != b"FCS":
                note = f"$NEXTDATA={nxt} does not point at an FCS HEADER; ignored"
            else:
                offset = target
                continue
            sets[-1] = replace(sets[-1], notes=sets[-1].notes + (note,))
            return sets

    def _data_set(self, offset: int, first: bool) -> DataSet:
        head = self.bytes(offset, offset + HEADER_SIZE)
        magic = head[:6].decode("latin-1")
        if not magic.startswith("FCS"):
            raise FcsError(self.name, NOT_FCS, "not an FCS file (HEADER does not start with 'FCS')")
        if magic not in SUPPORTED_VERSIONS:
            raise FcsError(self.name, UNSUPPORTED, f"FCS version '{magic}' is not supported")
        try:
            text_start, text_end, data_start, data_end = (
                _header_int(head[a:a + 8]) for a in (10, 18, 26, 34))
        except ValueError as exc:
            raise FcsError(self.name, CORRUPT, f"HEADER offset '{exc}' is not a number") from None
        if text_start <= 0 or text_end < text_start:
            raise FcsError(self.name, CORRUPT, f"HEADER gives no TEXT segment ({text_start}..{text_end})")
        if offset + text_end >= self.size:
            raise FcsError(self.name, TRUNCATED,
                           f"TEXT segment ends at byte {offset + text_end} but the file has {self.size}")
        raw = self.bytes(offset + text_start, offset + text_end + 1)
        notes: list[str] = []
        # Some writers point the TEXT end one byte short of the closing delimiter.
        if raw[-1:] != raw[:1] and offset + text_end + 1 < self.size \
                and self._map[offset + text_end + 1:offset + text_end + 2] == raw[:1]:
            raw += raw[:1]
            notes.append("TEXT end offset is one byte short of the closing delimiter")
        try:
            text = parse_text_segment(raw)
        except ValueError as exc:
            raise FcsError(self.name, CORRUPT, f"unreadable TEXT segment ({exc})") from None
        par, tot, bits = declared_widths(text, self.name)
        length = (tot * sum(storage_bits(b) for b in bits) + 7) // 8
        packed_length = (tot * sum(bits) + 7) // 8
        packed = packed_length != length and self._spans(text, data_start, data_end, packed_length) \
            and not self._spans(text, data_start, data_end, length)
        if packed:
            length = packed_length
            notes.append("odd $PnB widths are bit-packed (offsets match the packed size)")
        start = self._resolve_data_start(offset, text, data_start, data_end, length, notes)
        return DataSet(version=magic[3:], text=text, par=par, tot=tot, bits=bits, data_start=start,
                       data_length=length, packed=packed, notes=tuple(notes))

    @staticmethod
    def _spans(text: dict[str, str], h_start: int, h_end: int, length: int) -> bool:
        """Whether the TEXT or HEADER DATA offsets span ``length`` bytes (or one more)."""
        t_start, t_end = _kw_int(text, "$BEGINDATA") or 0, _kw_int(text, "$ENDDATA") or 0
        return any(s > 0 and e - s + 1 in (length, length + 1) for s, e in ((t_start, t_end), (h_start, h_end)))

    def _resolve_data_start(self, offset: int, text: dict[str, str], h_start: int, h_end: int,
                            length: int, notes: list[str]) -> int:
        """Choose the DATA start: TEXT ($BEGINDATA) or HEADER, whichever fits the declared size.

        Rule: candidates are the TEXT keywords and the HEADER fields (blank/0 = absent). A
        candidate is consistent when its end - start + 1 equals the declared length, or
        exceeds it by one byte (end offset off by one). TEXT wins when both are consistent;
        when only one is, it is used and the discrepancy noted; when none is, the first
        present candidate is used if the declared data fit in the file from there.
        """
        t_start, t_end = _kw_int(text, "$BEGINDATA") or 0, _kw_int(text, "$ENDDATA") or 0
        candidates = [("TEXT", t_start, t_end), ("HEADER", h_start, h_end)]
        present = [(src, s, e) for src, s, e in candidates if s > 0]
        if not present:
            if length == 0:
                return offset
            raise FcsError(self.name, CORRUPT, "neither HEADER nor TEXT says where DATA starts")
        consistent = [(src, s, e) for src, s, e in present if e - s + 1 in (length, length + 1)]
        if (t_start, t_end) != (h_start, h_end) and t_start > 0 and h_start > 0:
            notes.append(f"DATA offsets differ: HEADER {h_start}..{h_end}, TEXT {t_start}..{t_end}")
        src, start, end = (consistent or present)[0]
        if consistent and end - start + 1 == length + 1:
            notes.append(f"DATA end offset ({src}) is off by one byte")
        if not consistent and len(present) == 2 and present[0][1] != present[1][1]:
            notes.append(f"no DATA offsets match the declared size; using {src}")
        if offset + start + length > self.size:
            raise FcsError(self.name, TRUNCATED,
                           f"DATA declares {length} bytes from byte {offset + start} "
                           f"but the file has {self.size}")
        return offset + start

