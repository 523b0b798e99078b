"""Settings: defaults, overridden by a TOML settings file, overridden by ``MHLADR_*`` variables.

Resolution order (last wins): built-in defaults -> ``$MHLADR_HOME/settings.toml`` (or the file
named by ``MHLADR_SETTINGS``) -> environment variables ``MHLADR_<FIELD>`` (upper-case field
name, e.g. ``MHLADR_DATABASE_URL``, ``MHLADR_ABC_THRESHOLD``).

Every value is checked once, here, when the settings are loaded: its type (the field's
annotation), its range, and how values go together (the window's first day not after its last).
Anything unusable is an :class:`~pipeline.errors.InputError` (``bad_setting``) naming the
setting, where it was written (the settings file or the variable) and an example of a good
value; the rest of the code trusts a :class:`Settings`. Every setting is listed in README.md
("Settings").

Thresholds are declared once, where they are used: the trial rules in
:class:`pipeline.eligibility.Rules`, the gating QC in :class:`gating.result.GatingQCConfig`,
the bead QC in :class:`calibration.config.CalibrationQCConfig`; a setting only names them.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import shlex
import tomllib
import typing
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from pathlib import Path
from typing import Any, Callable

from calibration.config import CalibrationQCConfig
from gating.result import GatingQCConfig
from pipeline.acquisition import ROLE_NAMES
from pipeline.eligibility import Rules
from pipeline.errors import BAD_SETTING, InputError
from science.statistics import DEFAULT_STATISTIC, STATISTICS

DEFAULT_HOME = Path.home() / ".mhladr"
PREFIX = "MHLADR_"


@dataclass(frozen=True)
class Settings:
    home: Path = DEFAULT_HOME
    # SQLite under home when empty; PostgreSQL e.g. postgresql+psycopg://user@127.0.0.1:5432/db
    database_url: str = ""
    # Trial rule and reporting
    abc_threshold: float = Rules.abc_threshold
    window_first_day: int = Rules.window_first_day
    window_last_day: int = Rules.window_last_day
    statistic: str = DEFAULT_STATISTIC    # or 'geometric_mean' (same for beads and cells)
    # Monocyte counts
    monocytes_review_below: int = GatingQCConfig.monocytes_review_below
    monocytes_fail_below: int = GatingQCConfig.monocytes_fail_below
    # Bead QC
    r2_min: float = CalibrationQCConfig.r2_min
    slope_min: float = CalibrationQCConfig.slope_min
    slope_max: float = CalibrationQCConfig.slope_max
    bead_cv_review_above: float = CalibrationQCConfig.cv_review_above
    # Compensation: the lab's spillover matrices per instrument serial (CSV serial,source,detector,coefficient)
    spillover_file: str = ""
    # Pre-analytics: draw to acquisition at most 4 h (Döcke 2005, Clin Chem 51:2341: EDTA blood on ice,
    # stained within 4 h); an unknown draw time is a note unless the lab's SOP makes it a hold
    max_draw_to_acquisition_hours: float = 4.0
    unknown_draw_time_review: bool = False
    # The call near the cut-off: between-run CV of the AB/C (Döcke 2005: between-instrument CV < 4 %
    # in the standardized protocol; set the lab's own from its QC), p_below_threshold in
    # [near_cutoff_p, 1 - near_cutoff_p] is near_cutoff; repeat_near_cutoff asks for a repeat sample
    inter_assay_cv: float = 0.04
    near_cutoff_p: float = 0.05
    repeat_near_cutoff: bool = False
    # Keywords read by default
    kw_patient_id: str = "PATIENT ID"
    kw_sample_id: str = "SAMPLE ID"
    kw_collection_date: str = "COLLECTION DATE"
    kw_icu_admission: str = "ICU ADMISSION DATE"
    kw_bead_lot: str = "BEAD LOT"
    # Only IDs of this form are taken from keywords or file names (pseudonyms, never hospital IDs)
    patient_id_pattern: str = r"^PT-\d{3,6}$"
    # Per-instrument channel maps: {"$CYT value": {"pe": "FL2-H", "cd14": "FL3-H", ...}}
    channel_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    # Lab gating template (GatingML 2.0) and the gate in it that defines monocytes
    gating_template: str = ""
    gating_template_gate: str = ""
    # Sinks (empty = off)
    webhook_url: str = ""
    fhir_dir: str = ""
    csv_export: str = ""
    # Embedded Prefect server: its port, kept in MHLADR_HOME/prefect/port (next free one when taken;
    # 0 = any free port at each start)
    prefect_port: int = 4200
    # Lab console sessions: idle timeout and absolute lifetime
    console_idle_minutes: float = 15.0
    console_session_hours: float = 8.0
    # The lab's working hours (local time, HH:MM-HH:MM): the audit review lists persons' actions outside them
    lab_hours: str = "07:00-19:00"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "mhladr.sqlite"

    @property
    def reports_dir(self) -> Path:
        """Where the per-tube HTML reports go: ``home/reports``."""
        return self.home / "reports"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def log_file(self) -> Path:
        return log_file(self.home)

    def rules(self) -> Rules:
        """The configured threshold and window (the SOFA minimum is fixed by the protocol)."""
        return Rules(abc_threshold=self.abc_threshold, window_first_day=self.window_first_day,
                     window_last_day=self.window_last_day, repeat_near_cutoff=self.repeat_near_cutoff)

    def gating_qc(self) -> GatingQCConfig:
        """The gating QC; the CD14-dim shift is judged by :func:`pipeline.measurement.measure`
        against the AB/C's own uncertainty, not by a fixed share here."""
        return GatingQCConfig(monocytes_review_below=self.monocytes_review_below,
                              monocytes_fail_below=self.monocytes_fail_below, dim_shift_review_above=math.inf)

    def calibration_qc(self) -> CalibrationQCConfig:
        return CalibrationQCConfig(r2_min=self.r2_min, slope_min=self.slope_min, slope_max=self.slope_max,
                                   cv_review_above=self.bead_cv_review_above)


FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "home"}
TYPES = typing.get_type_hints(Settings)
# Examples for the settings whose default is empty (the others show their default).
EXAMPLES = {
    "database_url": "postgresql+psycopg://mhladr@127.0.0.1:5432/mhladr",
    "channel_maps": '{ FACSCalibur = { pe = "FL2-H", cd14 = "FL3-H" } }',
    "gating_template": "/srv/lab/monocyte_template.xml",
    "gating_template_gate": "Monocytes",
    "webhook_url": "https://ecrf.example.org/mhladr",
    "fhir_dir": "/srv/mhladr/fhir",
    "csv_export": "/srv/mhladr/ecrf.csv",
    "spillover_file": "/srv/lab/spillover.csv",
}


def home_from(env: dict[str, str] | os._Environ[str]) -> Path:
    """The data folder: ``MHLADR_HOME``, else ``~/.mhladr`` (the settings file lives inside it)."""
    return Path(env.get("MHLADR_HOME", str(DEFAULT_HOME))).expanduser()


def log_file(home: Path) -> Path:
    """Where the command line and the flows write their log lines and tracebacks."""
    return home / "logs" / "mhladr.log"


@dataclass(frozen=True)
class Origin:
    """Where a setting's value was written, to name it in an error."""

    file: str                  # the settings file, or the variable's name
    written: str               # the value as written there
    example: str               # a good value, written the same way


def _example(name: str) -> str:
    if name in EXAMPLES:
        return EXAMPLES[name]
    default = FIELDS[name].default
    if isinstance(default, bool):
        return str(not default).lower()
    return f"{default:g}" if isinstance(default, float) else str(default)


def mask_url(url: str) -> str:
    """A database or server URL as it may be shown: without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _in_file(path: Path, name: str, value: Any) -> Origin:
    shown = f'"{mask_url(value)}"' if isinstance(value, str) else repr(value)
    example = _example(name)
    if TYPES[name] is str:
        example = f'"{example}"'
    return Origin(str(path), f"{name} = {shown}", f"{name} = {example}")


def _in_env(name: str, raw: str) -> Origin:
    var = PREFIX + name.upper()
    return Origin(var, f"value {mask_url(raw)!r}", f"{var}={shlex.quote(_example(name))}")


def _bad(origin: Origin, problem: str) -> InputError:
    return InputError(origin.file, BAD_SETTING, f"{origin.written}: {problem} (e.g. {origin.example})")


def _typed(name: str, value: Any, origin: Origin) -> Any:
    """``value`` as the type of the setting ``name``, or an error naming it."""
    kind = TYPES[name]
    if kind is bool:
        if not isinstance(value, bool):
            raise _bad(origin, "must be true or false")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(origin, "must be a number")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(origin, "must be a whole number")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _bad(origin, "must be text (in quotes in the settings file)")
        return value
    if name != "channel_maps":            # a setting of a new type needs its check here
        raise TypeError(f"no check for the type {kind} of setting {name}")
    if not isinstance(value, dict) or not all(isinstance(m, dict) and all(isinstance(c, str) for c in m.values())
                                              for m in value.values()):
        raise _bad(origin, 'must map each $CYT instrument name to { role = "channel" }')
    unknown = sorted({role for m in value.values() for role in m} - set(ROLE_NAMES))
    if unknown:
        raise _bad(origin, f"unknown channel role(s) {', '.join(unknown)} (roles: {', '.join(ROLE_NAMES)})")
    return value


def _from_env(name: str, raw: str) -> Any:
    """An environment value read as the setting's type (a table as a TOML inline table)."""
    origin = _in_env(name, raw)
    kind = TYPES[name]
    try:
        if kind is float:
            return _typed(name, float(raw), origin)
        if kind is int:
            return int(raw)
        if kind is bool:
            if raw.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.strip().lower() in ("true", "1", "yes")
        if kind is str:
            return raw
        return _typed(name, tomllib.loads(f"v = {raw}")["v"] if raw.strip() else {}, origin)
    except (ValueError, tomllib.TOMLDecodeError):
        raise _bad(origin, {float: "not a number", int: "not a whole number", bool: "not true or false"}
                   .get(kind, "not a TOML inline table")) \
            from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, BAD_SETTING, f"not valid TOML ({exc}): fix that line, or move the file away "
                                            "to run with the defaults") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, BAD_SETTING, f"cannot read the settings file: {getattr(exc, 'strerror', exc)}") \
            from None
    for key in data:
        if key == "home":
            raise InputError(path, BAD_SETTING, "home is not set in the settings file (the file lives in it): "
                                                "set the environment variable MHLADR_HOME instead")
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise InputError(path, BAD_SETTING, f"unknown setting {key!r} ({hint}every setting is listed in "
                                                "README.md, section Settings)")
    return data


@dataclass(frozen=True)
class LabHours:
    """The lab's working hours, local time, every day: ``HH:MM-HH:MM`` (setting ``lab_hours``)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> "LabHours":
        found = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if found is None:
            raise ValueError(f"{text!r} is not HH:MM-HH:MM (e.g. 07:00-19:00)")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2, m2) > (24, 0) or (h1, m1) >= (h2, m2):
            raise ValueError(f"{text!r}: the start must be a time before the end, within one day")
        return cls(time(h1, m1), time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2))

    def within(self, moment: datetime, tz: tzinfo | None = None) -> bool:
        local = moment.astimezone(tz).time()
        return self.start <= local <= self.end

    def __str__(self) -> str:
        return f"{self.start.strftime('%H:%M')}-{self.end.strftime('%H:%M')}"



def _hours_ok(text: str) -> bool:
    try:
        LabHours.parse(text)
    except ValueError:
        return False
    return True


def _check(settings: Settings, origin: Callable[..., Origin]) -> None:
    """Ranges and combinations; ``origin(name, ...)`` names where the first given one was written."""
    s = settings

    def need(ok: bool, problem: str, *names: str) -> None:
        if not ok:
            raise _bad(origin(*names), problem)

    need(s.abc_threshold > 0, "must be above 0 (AB/C)", "abc_threshold")
    need(s.window_first_day >= 0, "must be 0 or more (the admission day is ICU day 0)", "window_first_day")
    need(s.window_first_day <= s.window_last_day,
         f"the window's first day ({s.window_first_day}) is after its last ({s.window_last_day})",
         "window_first_day", "window_last_day")
    need(s.monocytes_fail_below >= 0, "must be 0 or more", "monocytes_fail_below")
    need(s.monocytes_fail_below <= s.monocytes_review_below,
         f"monocytes_fail_below ({s.monocytes_fail_below}) is above monocytes_review_below "
         f"({s.monocytes_review_below})", "monocytes_fail_below", "monocytes_review_below")
    need(0 < s.r2_min <= 1, "must be above 0 and at most 1", "r2_min")
    need(0 < s.slope_min < s.slope_max, f"slope_min ({s.slope_min:g}) must be above 0 and below slope_max "
                                        f"({s.slope_max:g})", "slope_min", "slope_max")
    need(s.bead_cv_review_above > 0, "must be above 0 (a fraction: 0.15 = 15 %)", "bead_cv_review_above")
    need(s.max_draw_to_acquisition_hours > 0, "must be above 0 (hours)", "max_draw_to_acquisition_hours")
    need(0 <= s.inter_assay_cv < 1, "must be a fraction from 0 to below 1 (0.04 = 4 %)", "inter_assay_cv")
    need(0 < s.near_cutoff_p < 0.5, "must be above 0 and below 0.5 (0.05: near when 0.05 < p < 0.95)",
         "near_cutoff_p")
    need(not s.spillover_file or Path(s.spillover_file).is_file(),
         "no such CSV (serial,source,detector,coefficient; empty = none)", "spillover_file")
    need(s.statistic in STATISTICS, f"must be one of {', '.join(STATISTICS)}", "statistic")
    try:
        re.compile(s.patient_id_pattern)
    except re.error as exc:
        need(False, f"not a regular expression ({exc})", "patient_id_pattern")
    need(0 <= s.prefect_port <= 65535, "must be a port number (0 = any free port)", "prefect_port")
    need(s.console_idle_minutes > 0, "must be above 0 (minutes)", "console_idle_minutes")
    need(s.console_session_hours > 0, "must be above 0 (hours)", "console_session_hours")
    url = s.database_url
    need(not url or re.match(r"^(sqlite|postgresql\+psycopg)://", url) is not None,
         "the results database is SQLite (sqlite:///PATH) or PostgreSQL through psycopg "
         "(postgresql+psycopg://USER@HOST:PORT/DB); empty = SQLite under MHLADR_HOME", "database_url")
    need(_hours_ok(s.lab_hours), "must be HH:MM-HH:MM, start before end (local time), e.g. 07:00-19:00",
         "lab_hours")
    need(not s.webhook_url or re.match(r"^https?://", s.webhook_url) is not None,
         "must be an http:// or https:// URL (empty = no webhook)", "webhook_url")
    need(not s.gating_template or Path(s.gating_template).is_file(),
         "no such GatingML file (empty = the built-in monocyte gate)", "gating_template")
    need(not s.gating_template or bool(s.gating_template_gate),
         "a gating template needs gating_template_gate: the gate in it that defines monocytes",
         "gating_template_gate", "gating_template")


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the settings file, the environment and explicit overrides, checked.

    ``home`` comes only from ``MHLADR_HOME`` (the settings file lives inside it). Raises
    :class:`InputError` (``bad_setting``) naming the first unusable value."""
    env = dict(os.environ if env is None else env)
    if "home" in overrides:
        raise ValueError("home is set by MHLADR_HOME only")
    home = home_from(env)
    if home.exists() and not home.is_dir():
        raise InputError("MHLADR_HOME", BAD_SETTING, f"{home} is a file: MHLADR_HOME must name a folder "
                                                     "(created when missing)")
    named = env.get("MHLADR_SETTINGS")
    settings_file = Path(named or home / "settings.toml")
    if named and not settings_file.is_file():
        raise InputError("MHLADR_SETTINGS", BAD_SETTING, f"no settings file {named}: fix the path or unset "
                                                         "MHLADR_SETTINGS")
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    if settings_file.is_file():
        for name, value in _read_file(settings_file).items():
            origins[name] = _in_file(settings_file, name, value)
            values[name] = _typed(name, value, origins[name])
    for name in FIELDS:
        raw = env.get(PREFIX + name.upper())
        if raw is not None:
            origins[name] = _in_env(name, raw)
            values[name] = _from_env(name, raw)
    for name, value in overrides.items():
        if name not in FIELDS:
            raise TypeError(f"load_settings() got an unknown setting {name!r}")
        origins[name] = Origin("load_settings()", f"{name}={value!r}", f"{name}={_example(name)}")
        values[name] = _typed(name, value, origins[name])
    settings = Settings(home=home, **values)

    def origin(*names: str) -> Origin:
        given = next((n for n in names if n in origins), names[0])
        return origins.get(given) or Origin("default", f"{given} = {getattr(settings, given)!r}",
                                            f"{given} = {_example(given)}")

    _check(settings, origin)
    return settings
