"""Settings: defaults, overridden by a TOML settings file, overridden by ``MHLADR_*`` variables.

Resolution order (last wins): built-in defaults -> ``$MHLADR_HOME/settings.toml`` (or the file
named by ``MHLADR_SETTINGS``) -> environment variables ``MHLADR_<FIELD>`` (upper-case field
name, e.g. ``MHLADR_DATABASE_URL``, ``MHLADR_ABC_THRESHOLD``).

Thresholds are declared once, where they are used: the trial rules in
:class:`pipeline.eligibility.Rules`, the gating QC in :class:`gating.result.GatingQCConfig`,
the bead QC in :class:`calibration.config.CalibrationQCConfig`; a setting only names them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.config import CalibrationQCConfig
from gating.result import GatingQCConfig
from pipeline.eligibility import Rules
from science.statistics import DEFAULT_STATISTIC

DEFAULT_HOME = Path.home() / ".mhladr"


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

    @property
    def sqlite_path(self) -> Path:
        return self.home / "mhladr.sqlite"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    def rules(self) -> Rules:
        """The configured threshold and window (the SOFA minimum is fixed by the protocol)."""
        return Rules(abc_threshold=self.abc_threshold, window_first_day=self.window_first_day,
                     window_last_day=self.window_last_day)

    def gating_qc(self) -> GatingQCConfig:
        return GatingQCConfig(monocytes_review_below=self.monocytes_review_below,
                              monocytes_fail_below=self.monocytes_fail_below)

    def calibration_qc(self) -> CalibrationQCConfig:
        return CalibrationQCConfig(r2_min=self.r2_min, slope_min=self.slope_min, slope_max=self.slope_max,
                                   cv_review_above=self.bead_cv_review_above)


def _coerce(raw: str, current: Any) -> Any:
    """An environment value as the type of the field's default."""
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, dict):
        return tomllib.loads(f"v = {raw}")["v"] if raw.strip() else {}
    return raw


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the settings file, the environment and explicit overrides.

    ``home`` comes only from ``MHLADR_HOME`` (the settings file lives inside it)."""
    env = dict(os.environ if env is None else env)
    if "home" in overrides:
        raise ValueError("home is set by MHLADR_HOME only")
    home = Path(env.get("MHLADR_HOME", str(DEFAULT_HOME))).expanduser()
    settings_file = Path(env.get("MHLADR_SETTINGS", str(home / "settings.toml")))
    fields = [f for f in dataclasses.fields(Settings) if f.name != "home"]
    values: dict[str, Any] = {}
    if settings_file.is_file():
        with settings_file.open("rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - {f.name for f in fields}
        if unknown:
            raise ValueError(f"{settings_file}: unknown settings {sorted(unknown)}")
        values.update(data)
    defaults = Settings()
    for f in fields:
        key = f"MHLADR_{f.name.upper()}"
        if key in env:
            values[f.name] = _coerce(env[key], getattr(defaults, f.name))
    values.update(overrides)
    return Settings(home=home, **values)
