"""One entry point from a path to a typed :class:`~pipeline.acquisition.Acquisition`.

Why our own decoding: flowio 1.4 (flowkit's reader) reads TEXT well but raises on 24-bit and
bit-packed integer data (Cytek xP3/xP5, FC500 list mode), on blank HEADER offsets and on a
missing $DATATYPE, and it allocates what a file declares before checking that the file holds
it. fcsparser cannot share an environment with flowkit (numpy<2 vs numpy>=2). So the
structure (``fcs_segments``) and the DATA decoding (``fcs_data``) live here; flowio stays the
independent oracle in the tests and flowkit does compensation and GatingML.

Data-set rule: a file with several data sets ($NEXTDATA; Beckman LMD writes a 10-bit log
compensated FCS 2.0 set and a linear FCS 3.0 set) is read at data set 0 (the first, which
every standard reader returns by default) unless ``data_set`` says otherwise; the choice is
reported in ``Acquisition.data_set`` / ``data_sets``, and beads and cells read with the same
rule therefore share data set and scale.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gating.compensation import compensate
from pipeline.acquisition import Acquisition
from pipeline.config import Settings, load_settings
from pipeline.errors import NO_EVENTS, NOT_FCS, UNSUPPORTED, InputError
from pipeline.fcs_data import Layout, byte_order, decode_raw, to_linear
from pipeline.fcs_metadata import (acquired_at, assign_roles, channels_from_text, identify,
                                   spillover_from_text)
from pipeline.fcs_segments import DataSet, FcsFile


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _datatype(ds: DataSet, file: str, notes: list[str]) -> str:
    raw = ds.text.get("$DATATYPE", "").strip().upper()
    if raw:
        return raw
    widths = set(ds.bits)
    if widths <= {8, 16, 24} or any(w % 8 for w in widths):
        notes.append("$DATATYPE missing; integer data inferred from $PnB")
        return "I"
    raise InputError(file, UNSUPPORTED, f"$DATATYPE missing and $PnB {sorted(widths)} do not say integer or float")


def _positive_float(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def _serial(text: dict[str, str]) -> str | None:
    """$CYTSN, or CYTNUM as BD CellQuest writes it on FCS 2.0 files."""
    for key in ("$CYTSN", "CYTNUM"):
        if text.get(key, "").strip():
            return text[key].strip()
    return None


def read_fcs(path: str | Path, settings: Settings | None = None, data_set: int = 0,
             compensate_data: bool = True) -> Acquisition:
    """Read one data set of an FCS file (data set 0 by default, see module doc).

    Uncompensated data with a spillover matrix are compensated here, before any fluorescence
    is used, so beads and cells always share one compensation state (``compensate_data=False``
    keeps the values as stored). Hardware-compensated files carry no matrix and stay as they are.
    """
    settings = settings or load_settings()
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputError(name, NOT_FCS, "no such file")
    with FcsFile(path) as fcs:
        sets = fcs.data_sets()
        if not 0 <= data_set < len(sets):
            raise InputError(name, UNSUPPORTED, f"data set {data_set} requested, the file has {len(sets)}")
        ds = sets[data_set]
        notes = list(ds.notes)
        if len(sets) > 1:
            notes.append(f"{len(sets)} data sets; read data set {data_set} (rule: the first unless asked)")
        mode = ds.text.get("$MODE", "L").strip().upper() or "L"
        if mode != "L":
            raise InputError(name, UNSUPPORTED, f"$MODE {mode} (histogram data) is not list mode")
        datatype = _datatype(ds, name, notes)
        channels = channels_from_text(ds.text, ds.bits, name)
        if ds.tot == 0:
            raise InputError(name, NO_EVENTS, "the file holds no events ($TOT=0)")
        layout = Layout(datatype=datatype,
                        little_endian=byte_order(ds.text.get("$BYTEORD", "1,2,3,4"), name),
                        bits=tuple(ch.bits for ch in channels), ranges=tuple(ch.range for ch in channels),
                        events=ds.tot, packed=ds.packed)
        view = fcs.view(ds.data_start, ds.data_length)
        try:
            raw = decode_raw(view, layout, name)
        finally:
            view.release()
    time_col = next((ch.index for ch in channels if ch.is_time), None)
    events = to_linear(raw, datatype, layout.ranges,
                       tuple((ch.log_decades, ch.log_offset) for ch in channels),
                       tuple(1.0 if ch.index == time_col else (ch.gain or 1.0) for ch in channels))
    timestep = _positive_float(ds.text.get("$TIMESTEP"))
    if time_col is not None and timestep:
        events[:, time_col] *= timestep  # FCS 3.1 3.2.18: Time in units of $TIMESTEP seconds
    spill, spill_note = spillover_from_text(ds.text, channels, name)
    if spill_note:
        notes.append(spill_note)
    if spill is not None and compensate_data:
        compensate(events, [ch.name for ch in channels], spill.channels, spill.matrix, in_place=True)
        notes.append(f"compensated with the file's {spill.keyword}")
    instrument = ds.text.get("$CYT", "").strip() or None
    ident = identify(path, ds.text, settings)
    notes.extend(ident.pop("notes"))  # type: ignore[arg-type]
    return Acquisition(
        path=name, sha256=sha256_file(path), size=path.stat().st_size, fcs_version=ds.version,
        instrument=instrument, serial=_serial(ds.text),
        acquired=acquired_at(ds.text), channels=channels, events=events, spillover=spill,
        compensated=spill is None or compensate_data, roles=assign_roles(channels, instrument, settings.channel_maps),
        data_set=data_set, data_sets=len(sets), notes=tuple(notes), **ident)  # type: ignore[arg-type]
