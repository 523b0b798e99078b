"""What a data set's keywords and the file name say: channels, roles, kind, patient and dates.

Channel roles follow DESIGN.md: markers in $PnS first ('HLA-DR', 'CD14'), then the
fluorochrome in $PnN ('PE-A', 'PerCP-Cy5-5-A', ...), then FL2 = PE / FL3 = PerCP-Cy5.5 on
analog FACSCalibur/FACScan files; a per-instrument channel map in the settings overrides all.
Only pseudonymous patient IDs (matching the configured pattern) are taken from keywords or
names; anything else is ignored and noted, never stored.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

from gating.compensation import spillover_problems
from pipeline.acquisition import ROLE_NAMES, Channel, Kind, Roles, Spillover
from pipeline.config import Settings
from pipeline.errors import CORRUPT, InputError

_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
MAX_LOG_DECADES = 10   # log amplifiers span 3-5 decades; more is a damaged keyword
SPILL_KEYWORDS = ("$SPILLOVER", "SPILL", "$SPILL", "SPILLOVER")
BEAD_NAME = re.compile(r"^BEADS?_(?P<date>\d{4}-\d{2}-\d{2})_(?P<lot>[^_.]+)", re.IGNORECASE)


def _float(raw: str | None, default: float | None = None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        return default


def channels_from_text(text: dict[str, str], bits: tuple[int, ...], file: str) -> tuple[Channel, ...]:
    """The $Pn... keywords of every parameter as :class:`Channel` records.

    ``bits`` are the $PnB widths already checked by ``fcsio.segments.declared_widths`` (one per
    parameter, so their count is $PAR); they are not parsed a second time here.
    """
    out = []
    for n, width in enumerate(bits, start=1):
        name = text.get(f"$P{n}N", "").strip() or f"P{n}"
        log_raw = [p.strip() for p in text.get(f"$P{n}E", "0,0").split(",")]
        decades = _float(log_raw[0] if log_raw else None, 0.0) or 0.0
        offset = _float(log_raw[1] if len(log_raw) > 1 else None, 0.0) or 0.0
        if not (0 <= decades <= MAX_LOG_DECADES and 0 <= offset < 1e6):
            raise InputError(file, CORRUPT, f"implausible $P{n}E={text.get(f'$P{n}E')!r}")
        out.append(Channel(
            index=n - 1, name=name, label=text.get(f"$P{n}S", "").strip(),
            range=_float(text.get(f"$P{n}R"), 0.0) or 0.0, bits=width,
            voltage=_float(text.get(f"$P{n}V")), gain=_float(text.get(f"$P{n}G"), 1.0),
            log_decades=decades, log_offset=offset))
    return tuple(_unique_names(out))


def _unique_names(channels: list[Channel]) -> list[Channel]:
    """Duplicate $PnN names (seen on MACSQuant) get a ' (n)' suffix so columns stay addressable."""
    seen: dict[str, int] = {}
    out = []
    for ch in channels:
        count = seen.get(ch.name, 0)
        seen[ch.name] = count + 1
        if count:
            ch = Channel(ch.index, f"{ch.name} ({count + 1})", ch.label, ch.range, ch.bits,
                         ch.voltage, ch.gain, ch.log_decades, ch.log_offset)
        out.append(ch)
    return out


def spillover_from_text(text: dict[str, str], channels: tuple[Channel, ...],
                        file: str = "") -> tuple[Spillover | None, str | None]:
    """The spillover matrix (FCS 3.1 $SPILLOVER form: n, n names, n*n values) or a note.

    A matrix changes every fluorescence value, so one that cannot be used as written is a
    :class:`InputError` (``corrupt``) naming the keyword: unreadable numbers, a count that
    does not match n, channels the data lack, or a matrix that fails
    :func:`gating.compensation.spillover_problems` (not finite, not square, diagonal not 1,
    singular or ill-conditioned). Two matrices that change nothing are read as no matrix,
    with a note: a keyword that lists channels and no coefficient at all (MACSQuant writes this
    when no compensation was set up), and an identity matrix naming a channel the data lack
    (anonymised files whose $PnN was rewritten but not the matrix).
    """
    for key in SPILL_KEYWORDS:
        raw = text.get(key, "").strip()
        if not raw:
            continue
        parts = [p.strip() for p in raw.split(",")]
        try:
            n = int(parts[0])
            names = parts[1:1 + n]
            values = np.array([float(v) for v in parts[1 + n:]], dtype=float)
        except (ValueError, IndexError):
            raise InputError(file, CORRUPT, f"{key} is not a readable spillover matrix "
                             f"(n, n channel names, n*n numbers): {raw[:60]!r}") from None
        if n > 0 and len(names) == n and values.size == 0:
            return None, f"{key} names {n} channels but holds no coefficients: no compensation"
        if n <= 0 or len(names) != n or values.size != n * n:
            raise InputError(file, CORRUPT, f"{key} declares {n} channels but holds {len(names)} names "
                             f"and {values.size} values (needs {max(n, 0) ** 2})")
        matrix = values.reshape(n, n)
        by_name = {ch.name: ch.name for ch in channels}
        resolved = []
        for nm in names:
            if nm in by_name:
                resolved.append(nm)
            elif nm.isdigit() and 1 <= int(nm) <= len(channels):
                resolved.append(channels[int(nm) - 1].name)
            elif np.array_equal(matrix, np.eye(n)):
                return None, f"{key} is an identity matrix naming channel '{nm}' that the data do not have; ignored"
            else:
                raise InputError(file, CORRUPT, f"{key} names channel '{nm}' that the data do not have")
        problems = spillover_problems(resolved, matrix)
        if problems:
            raise InputError(file, CORRUPT, f"{key} is not a usable spillover matrix: " + "; ".join(problems))
        return Spillover(keyword=key, channels=tuple(resolved), matrix=matrix), None
    return None, None


# -- roles ---------------------------------------------------------------------------
_SCATTER = {
    "fsc_a": re.compile(r"^FSC?[-_ ]?A(REA)?$|^FS ?INT$", re.I),
    "fsc_h": re.compile(r"^FSC?[-_ ]?H(EIGHT)?$|^FSC?$|^FS ?PEAK$", re.I),
    "ssc_a": re.compile(r"^SSC?[-_ ]?A(REA)?$|^SS ?INT$", re.I),
    "ssc_h": re.compile(r"^SSC?[-_ ]?H(EIGHT)?$|^SSC?$|^SS ?PEAK$", re.I),
}
_MARKER = {"pe": re.compile(r"HLA[-_ ]?DR", re.I), "cd14": re.compile(r"\bCD ?14\b", re.I)}
_FLUOR = {
    "pe": re.compile(r"^PE[-_ ]?[AH]?$", re.I),
    "cd14": re.compile(r"^PerCP([-_ ]?Cy5[-_. ]?5)?[-_ ]?[AH]?$", re.I),
}
_ANALOG_FL = {"pe": re.compile(r"^FL2([-_ ]?[AH])?$", re.I), "cd14": re.compile(r"^FL3([-_ ]?[AH])?$", re.I)}
_ANALOG_CYT = re.compile(r"calibur|facscan", re.I)


def _prefer_area(names: list[str]) -> str | None:
    """Among matching channels, the area (-A) one, then height, then the first."""
    for suffix in ("A", "H"):
        for nm in names:
            if re.search(rf"[-_ ]{suffix}$", nm, re.I):
                return nm
    return names[0] if names else None


def assign_roles(channels: tuple[Channel, ...], instrument: str | None,
                 channel_maps: dict[str, dict[str, str]]) -> Roles:
    names = [ch.name for ch in channels]
    roles: dict[str, str | None] = {r: None for r in ROLE_NAMES}
    for role, rx in _SCATTER.items():
        roles[role] = next((nm for nm in names if rx.match(nm.strip())), None)
    for role in ("pe", "cd14"):
        by_marker = [ch.name for ch in channels if _MARKER[role].search(ch.label)]
        by_fluor = [nm for nm in names if _FLUOR[role].match(nm.strip())]
        by_analog = [nm for nm in names if _ANALOG_FL[role].match(nm.strip())] \
            if instrument and _ANALOG_CYT.search(instrument) else []
        roles[role] = _prefer_area(by_marker) or _prefer_area(by_fluor) or _prefer_area(by_analog)
    for cyt, mapping in channel_maps.items():
        if instrument and cyt.strip().lower() == instrument.strip().lower():
            for role, nm in mapping.items():
                if role in roles and nm in names:
                    roles[role] = nm
    return Roles(**roles)


# -- dates, ids, kind ----------------------------------------------------------------
def parse_date(raw: str | None) -> date | None:
    """ISO dates, FCS $DATE 'dd-mmm-yyyy' (and 2-digit years), dd/mm/yyyy."""
    if not raw:
        return None
    s = raw.strip()
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(s[:19] if "T" in s or " " in s else s, fmt).date()
        except ValueError:
            pass
    m = re.match(r"^(\d{1,2})[-/ ]([A-Za-z]{3})[-/ ](\d{2,4})$", s)
    if m and m.group(2).upper() in _MONTHS:
        year = int(m.group(3))
        year += 2000 if year < 70 else (1900 if year < 100 else 0)
        try:
            return date(year, _MONTHS[m.group(2).upper()], int(m.group(1)))
        except ValueError:
            return None
    return None


def parse_time(raw: str | None) -> time | None:
    """$BTIM: hh:mm:ss, hh:mm:ss.cc (FCS 3.x) or hh:mm:ss:tt (FCS 2.0, 1/60 s)."""
    if not raw:
        return None
    m = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?", raw.strip())
    if not m:
        return None
    h, mi, se = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or se > 59:
        return None
    return time(h, mi, se)


def acquired_at(text: dict[str, str]) -> datetime | None:
    start = text.get("$DATETIMESTART")
    if start:
        try:
            return datetime.fromisoformat(start.strip())
        except ValueError:
            pass
    day = parse_date(text.get("$DATE"))
    if day is None:
        return None
    return datetime.combine(day, parse_time(text.get("$BTIM")) or time(0, 0))


def patient_from_name(stem: str, settings: Settings) -> str | None:
    """The pseudonymous patient ID a file name starts with (``PT-0042_D07_HLADR``), if any."""
    core = settings.patient_id_pattern.lstrip("^").rstrip("$")
    m = re.match(rf"^({core})(?=[_.]|$)", stem)
    return m.group(1) if m else None


def pseudonymous_id(raw: str | None, settings: Settings) -> str | None:
    if not raw:
        return None
    value = raw.strip()
    return value if re.fullmatch(settings.patient_id_pattern, value) else None


def identify(path: Path, text: dict[str, str], settings: Settings) -> dict[str, object]:
    """Patient id, dates, lot, tube name and kind from keywords, then the file name."""
    notes: list[str] = []
    stem = path.name
    kw = {k: text.get(k.upper(), "").strip() for k in (
        settings.kw_patient_id, settings.kw_sample_id, settings.kw_collection_date,
        settings.kw_icu_admission, settings.kw_bead_lot, "TUBE NAME")}
    patient = pseudonymous_id(kw[settings.kw_patient_id], settings) \
        or pseudonymous_id(kw[settings.kw_sample_id], settings)
    if not patient:
        patient = patient_from_name(stem, settings)
    if kw[settings.kw_patient_id] and not pseudonymous_id(kw[settings.kw_patient_id], settings):
        notes.append(f"keyword '{settings.kw_patient_id}' is not a pseudonymous ID; ignored")
    bead_match = BEAD_NAME.match(stem)
    lot = kw[settings.kw_bead_lot] or (bead_match.group("lot") if bead_match else None)
    tube = kw["TUBE NAME"] or None
    beads = bool(bead_match) or bool(kw[settings.kw_bead_lot]) or bool(tube and re.search(r"bead", tube, re.I))
    kind: Kind = "beads" if beads else ("sample" if patient else "unknown")
    collection = parse_date(kw[settings.kw_collection_date])
    draw_time = parse_time(text.get("COLLECTION TIME")) if collection is not None else None
    drawn = datetime.combine(collection, draw_time) if collection and draw_time else collection
    if collection is None and kind != "unknown":
        collection = parse_date(bead_match.group("date")) if bead_match else parse_date(text.get("$DATE"))
    return {"patient_id": patient if kind == "sample" else None, "collection_date": collection,
            "icu_admission": parse_date(kw[settings.kw_icu_admission]), "bead_lot": lot if beads else None,
            "tube_name": tube, "kind": kind, "collected_at": drawn, "notes": notes}
