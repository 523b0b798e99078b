"""From a path to a typed :class:`~pipeline.acquisition.Header`, then to an
:class:`~pipeline.acquisition.Acquisition`: each file hashed once, decoded once.

Why our own decoding: flowio 1.4 (flowkit's reader) reads TEXT well but raises on 24-bit and
bit-packed integer data (Cytek xP3/xP5, FC500 list mode), on blank HEADER offsets and on a
missing $DATATYPE, and it allocates what a file declares before checking that the file holds
it. fcsparser cannot share an environment with flowkit (numpy<2 vs numpy>=2). So the
structure and the DATA decoding live in our own reader, the top-level package :mod:`fcsio`
(no settings, no pipeline); this module is the pipeline's adapter to it (the file's meaning:
channels, roles, identity, compensation; an :class:`~fcsio.FcsError` becomes an
:class:`~pipeline.errors.InputError` with the same code). flowio stays the independent oracle
in the tests and flowkit does GatingML.

:func:`read_header` maps the file once, hashes it (SHA-256) and checks HEADER, TEXT and every
offset, without decoding a single event: enough to answer ``mhladr inspect``, to tell beads
from samples and to find a tube's calibration. :func:`decode` reads the events of a header
(checking that the file is still the one hashed); :func:`read_fcs` does both.

Data-set rule: a file with several data sets ($NEXTDATA; Beckman LMD writes a 10-bit log
compensated FCS 2.0 set and a linear FCS 3.0 set) is read at data set 0 (the first, which
every standard reader returns by default) unless ``data_set`` says otherwise; the choice is
reported in ``data_set`` / ``data_sets``, and beads and cells read with the same rule
therefore share data set and scale.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from fcsio.data import Layout, byte_order, data_type, decode_raw, to_linear
from fcsio.errors import FcsError
from fcsio.segments import FcsFile
from gating.compensation import compensate
from pipeline.acquisition import Acquisition, DataLayout, Header
from pipeline.compensation_state import lab_spillover
from pipeline.config import Settings, load_settings
from pipeline.errors import CORRUPT, NO_EVENTS, NOT_FCS, UNSUPPORTED, InputError
from pipeline.fcs_metadata import (acquired_at, assign_roles, channels_from_text, identify,
                                   spillover_from_text)


@contextmanager
def _input_errors() -> Iterator[None]:
    """The reader's :class:`FcsError` as the pipeline's :class:`InputError` (same file, code, message)."""
    try:
        yield
    except FcsError as err:
        raise InputError(err.file, err.code, err.message) from None


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


def read_header(path: str | Path, settings: Settings | None = None, data_set: int = 0,
                sha256: str | None = None) -> Header:
    """Hash the file (unless its ``sha256`` was just taken) and describe one data set from its
    HEADER and TEXT (see module doc).

    Raises :class:`InputError` (``not_fcs``, ``truncated``, ``corrupt``, ``unsupported``,
    ``no_events``) when the file cannot be used.
    """
    with _input_errors():
        return _read_header(path, settings or load_settings(), data_set, sha256)


def _read_header(path: str | Path, settings: Settings, data_set: int, sha256: str | None) -> Header:
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise InputError(name, NOT_FCS, "a folder, not a file" if path.is_dir() else "no such file")
    with FcsFile(path) as fcs:
        sha256 = sha256 or fcs.sha256()
        sets = fcs.data_sets()
    if not 0 <= data_set < len(sets):
        raise InputError(name, UNSUPPORTED, f"data set {data_set} requested; the file has {len(sets)}, "
                                            f"numbered from 0 (0..{len(sets) - 1})")
    ds = sets[data_set]
    notes = list(ds.notes)
    if len(sets) > 1:
        notes.append(f"{len(sets)} data sets; read data set {data_set} (rule: the first unless asked)")
    mode = ds.text.get("$MODE", "L").strip().upper() or "L"
    if mode != "L":
        raise InputError(name, UNSUPPORTED, f"$MODE {mode} (histogram data) is not list mode")
    datatype = data_type(ds, name, notes)
    channels = channels_from_text(ds.text, ds.bits, name)
    if ds.tot == 0:
        raise InputError(name, NO_EVENTS, "the file holds no events ($TOT=0)")
    layout = DataLayout(datatype=datatype, little_endian=byte_order(ds.text.get("$BYTEORD", "1,2,3,4"), name),
                        start=ds.data_start, length=ds.data_length, packed=ds.packed)
    spill, spill_note = spillover_from_text(ds.text, channels, name)
    if spill_note:
        notes.append(spill_note)
    if spill is None and settings.spillover_file:
        spill = lab_spillover(settings.spillover_file, _serial(ds.text), tuple(ch.name for ch in channels))
    instrument = ds.text.get("$CYT", "").strip() or None
    ident = identify(path, ds.text, settings)
    notes.extend(ident.pop("notes"))  # type: ignore[arg-type]
    return Header(
        path=name, sha256=sha256, size=fcs.size, fcs_version=ds.version, instrument=instrument,
        serial=_serial(ds.text), acquired=acquired_at(ds.text), channels=channels, n_events=ds.tot,
        timestep=_positive_float(ds.text.get("$TIMESTEP")),
        layout=layout, spillover=spill, roles=assign_roles(channels, instrument, settings.channel_maps),
        data_set=data_set, data_sets=len(sets), notes=tuple(notes), **ident)  # type: ignore[arg-type]


def decode(header: Header, compensate_data: bool = True) -> Acquisition:
    """The events of ``header``'s data set, linear, compensated with the file's own spillover.

    Uncompensated data with a spillover matrix are compensated here, before any fluorescence
    is used, so beads and cells always share one compensation state (``compensate_data=False``
    keeps the values as stored). Hardware-compensated files carry no matrix and stay as they
    are. Raises ``corrupt`` when the file changed size since it was hashed.
    """
    with _input_errors():
        return _decode(header, compensate_data)


def _decode(header: Header, compensate_data: bool) -> Acquisition:
    path = Path(header.path)
    if not path.is_file():
        raise InputError(header.path, NOT_FCS, "no such file")
    if os.stat(path).st_size != header.size:
        raise InputError(header.path, CORRUPT, "the file changed while it was being read")
    channels = header.channels
    layout = Layout(datatype=header.layout.datatype, little_endian=header.layout.little_endian,
                    bits=tuple(ch.bits for ch in channels), ranges=tuple(ch.range for ch in channels),
                    events=header.n_events, packed=header.layout.packed)
    with FcsFile(path) as fcs:
        view = fcs.view(header.layout.start, header.layout.length)
        try:
            raw = decode_raw(view, layout, header.path)
        finally:
            view.release()
    time_col = next((ch.index for ch in channels if ch.is_time), None)
    events = to_linear(raw, layout.datatype, layout.ranges,
                       tuple((ch.log_decades, ch.log_offset) for ch in channels),
                       tuple(1.0 if ch.index == time_col else (ch.gain or 1.0) for ch in channels))
    notes = list(header.notes)
    if time_col is not None and header.timestep:
        events[:, time_col] *= header.timestep  # FCS 3.1 3.2.18: Time in units of $TIMESTEP seconds
    spill = header.spillover
    if spill is not None and compensate_data:
        compensate(events, [ch.name for ch in channels], spill.channels, spill.matrix, in_place=True)
        notes.append(f"compensated with the file's {spill.keyword}")
    values = {f.name: getattr(header, f.name) for f in fields(Header)}
    values["notes"] = tuple(notes)
    return Acquisition(**values, events=events, compensated=spill is None or compensate_data)


def read_fcs(path: str | Path, settings: Settings | None = None, data_set: int = 0,
             compensate_data: bool = True) -> Acquisition:
    """Read one data set of an FCS file: :func:`read_header` then :func:`decode`."""
    return decode(read_header(path, settings, data_set), compensate_data)
