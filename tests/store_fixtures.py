"""Fixtures and builders for the store/rules/sink tests, over SQLite and PostgreSQL.

PostgreSQL is used when ``MHLADR_TEST_POSTGRES_URL`` is set, else tried at
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` and skipped (with the reason) when
unreachable. Each PostgreSQL test gets its own fresh schema (selected through ``search_path``
in the URL), dropped afterwards.
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

from science.qc import QC
from pipeline.config import Settings, load_settings
from calibration.curve import fit_curve
from calibration.key import CalibrationKey
from calibration.result import Calibration, LogHistogram, Population
from calibration.scale import ChannelScale
from pipeline.measurement import Measurement
from pipeline.store import Store, open_store

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


@functools.cache
def postgres_url() -> tuple[str | None, str]:
    """(URL, '') when PostgreSQL answers, else (None, reason)."""
    url = os.environ.get("MHLADR_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        import psycopg
        with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means: not available here
        first_line = (str(exc).splitlines() or [""])[0]
        return None, f"PostgreSQL not reachable at {url} ({type(exc).__name__}: {first_line})"
    return url, ""


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)




class Clock:
    """A settable UTC clock for the store (tests move time explicitly)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def fresh_postgres_schema(base: str) -> tuple[str, str]:
    """Create a unique schema; returns (URL selecting it, schema name)."""
    import psycopg
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}", schema


def drop_postgres_schema(base: str, schema: str) -> None:
    import psycopg
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mhladr.sqlite'}"
        return
    base, reason = postgres_url()
    if base is None:
        pytest.skip(reason)
    url, schema = fresh_postgres_schema(base)
    try:
        yield url
    finally:
        drop_postgres_schema(base, schema)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(env={"MHLADR_HOME": str(tmp_path / "home")}, database_url=db_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(settings: Settings, clock: Clock) -> Iterator[Store]:
    opened = open_store(settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the command line (which reads the environment) at the test database."""
    for key in list(os.environ):
        if key.startswith("MHLADR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MHLADR_HOME", str(settings.home))
    monkeypatch.setenv("MHLADR_DATABASE_URL", settings.effective_database_url)
    return settings


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A SQLite store under a fresh MHLADR_HOME that the command line points at, with the CSV
    sink on (for command-line checks that do not depend on the backend)."""
    for key in list(os.environ):
        if key.startswith("MHLADR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MHLADR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MHLADR_CSV_EXPORT", str(tmp_path / "ecrf.csv"))
    opened = open_store(load_settings(), clock=Clock())
    try:
        yield opened
    finally:
        opened.close()


def sha(n: int | str) -> str:
    """A deterministic fake SHA-256 for file ``n``."""
    import hashlib
    return hashlib.sha256(str(n).encode()).hexdigest()


def calibration(file_n: int = 0, *, voltage: float = 450.0, gain: float | None = 1.0,
                day: date = date(2026, 3, 6), qc: QC = QC(), channel: str = "PE-A",
                instrument: str = "FACSCanto II", serial: str = "V123") -> Calibration:
    """A QuantiBRITE calibration of bead file ``file_n`` (F = 0.9 x bead value at every level)."""
    values = (474.0, 5359.0, 23843.0, 62336.0)
    curve = fit_curve([v * 0.9 for v in values], list(values))
    return Calibration(
        key=CalibrationKey(instrument=instrument, serial=serial, channel=channel, voltage=voltage, gain=gain,
                           acquired=datetime.combine(day, datetime.min.time()).replace(hour=8), lot="lotA",
                           sha256=sha(file_n), scale=ChannelScale(channel, "F", 32, 262144.0, gain=1.0)),
        statistic="median", bead_values=values,
        populations=tuple(Population(level=i, bead_value=v, status="fitted", fluorescence=v * 0.9, events=2500,
                                     cv=0.05, residual=0.0) for i, v in enumerate(values)),
        extra_populations=(), curve=curve, qc=qc, gate=None, histogram=LogHistogram(2.0, 0.01, (1, 2, 3)))


def measurement(file_n: int, patient_id: str, collection: date, abc: float | None, *,
                qc: QC = QC()) -> Measurement:
    return Measurement(
        file=f"/in/{file_n}.fcs", sha256=sha(file_n), patient_id=patient_id, collection_date=collection,
        icu_day=None, in_window=None, monocytes=4200, statistic="median",
        pe_statistic=None if abc is None else abc * 0.8, abc=abc,
        abc_interval=None if abc is None else (abc * 0.95, abc * 1.05),
        below_threshold=None if abc is None or qc.status == "fail" else abc < 8000,
        category=None, qc=qc, gates={"monocytes": {"cd14_min": 1200.0}}, calibration=None,
        analysed_at=T0, software_version="0.1.0")


@dataclass(frozen=True)
class RegistryRow:
    patient_id: str
    icu_admission: str = "2026-03-01"
    sofa_24h: int = 8
    mechanical_ventilation: str = "yes"
    exclusion: str = ""
    randomized_at: str = ""

    def line(self) -> str:
        return ",".join([self.patient_id, self.icu_admission, str(self.sofa_24h),
                         self.mechanical_ventilation, self.exclusion, self.randomized_at])


def write_registry(path: Path, rows: list[RegistryRow] | list[str]) -> Path:
    header = "patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,randomized_at"
    lines = [r.line() if isinstance(r, RegistryRow) else r for r in rows]
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path
