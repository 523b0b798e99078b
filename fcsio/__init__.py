"""fcsio: a reader of FCS 2.0/3.0/3.1/3.2 list-mode files (ISAC Data File Standard for Flow
Cytometry), a library of its own like flowio: it imports nothing of the project, reads no
settings and knows nothing of beads, patients or gates.

Public face (everything else is for the project's own adapter, :mod:`pipeline.fcs`):

- :func:`read_header`: every data set's HEADER and TEXT structure (version, $PAR, $TOT, $PnB, where
  DATA lies), checked against the file size, no event decoded;
- :func:`read_text`: one data set's TEXT keywords;
- :func:`read_data`: one data set's events as stored (events x parameters, float32), before any
  $PnE/$PnG scale decoding (:func:`fcsio.data.to_linear` does that);
- :class:`FcsError`: why a file cannot be read (``not_fcs``, ``truncated``, ``unsupported``,
  ``corrupt``).

Modules: :mod:`fcsio.segments` (HEADER, TEXT, data sets, offsets), :mod:`fcsio.data` (DATA
decoding), :mod:`fcsio.errors`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fcsio.data import Layout, byte_order, data_type, decode_raw
from fcsio.errors import NOT_FCS, UNSUPPORTED, FcsError
from fcsio.segments import DataSet, FcsFile

__all__ = ["DataSet", "FcsError", "read_data", "read_header", "read_text"]


def read_header(path: str | Path) -> list[DataSet]:
    """Every data set of the file (following $NEXTDATA), without decoding an event."""
    if not Path(path).is_file():
        raise FcsError(path, NOT_FCS, "a folder, not a file" if Path(path).is_dir() else "no such file")
    with FcsFile(path) as fcs:
        return fcs.data_sets()


def _data_set(path: str | Path, data_set: int) -> DataSet:
    sets = read_header(path)
    if not 0 <= data_set < len(sets):
        raise FcsError(path, UNSUPPORTED, f"data set {data_set} requested; the file has {len(sets)}")
    return sets[data_set]


def read_text(path: str | Path, data_set: int = 0) -> dict[str, str]:
    """The TEXT keywords of one data set (numbered from 0)."""
    return dict(_data_set(path, data_set).text)


def read_data(path: str | Path, data_set: int = 0) -> np.ndarray:
    """The events of one data set as stored: integers masked to $PnR, floats as written."""
    ds = _data_set(path, data_set)
    name = str(path)
    ranges = []
    for n in range(1, ds.par + 1):
        try:
            ranges.append(float(ds.text.get(f"$P{n}R", "") or 0.0))
        except ValueError:
            ranges.append(0.0)
    layout = Layout(datatype=data_type(ds, name, []), little_endian=byte_order(ds.text.get("$BYTEORD", "1,2,3,4"), name),
                    bits=ds.bits, ranges=tuple(ranges), events=ds.tot, packed=ds.packed)
    with FcsFile(path) as fcs:
        view = fcs.view(ds.data_start, ds.data_length)
        try:
            return decode_raw(view, layout, name)
        finally:
            view.release()
