"""Alembic 0001 -> 0002 on a database with results written by 0001: every row converted."""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import text

from pipeline.store import open_store
from pipeline.store.engine import alembic_config, make_engine, writer
from tests.store_fixtures import db_url, settings, sha  # noqa: F401

LEGACY_CALIBRATION = (
    "INSERT INTO calibrations (instrument, serial, channel, voltage, gain, acquisition_date, lot, bead_values, "
    "file_sha256, slope, intercept, r2, covariance, peaks, qc_status, qc_reasons, statistic, software_version, "
    "created) VALUES ('FACSCanto II', 'V1', 'PE-A', 450, 1, '2026-03-12', 'lotA', '[474, 5359, 23843, 62336]', "
    ":sha, 1.02, 0.23, 0.9995, '[[1e-4, -2e-4], [-2e-4, 5e-4]]', :peaks, 'pass', '[]', 'median', '0.1.0', "
    "'2026-03-12 09:00:00')")
PEAKS = ('[{"bead_value": 474, "fluorescence": 251.1, "events": 4000, "cv": 0.05, "status": "fitted"},'
         ' {"bead_value": 5359, "fluorescence": 2698, "events": 4000, "cv": 0.04, "status": "fitted"},'
         ' {"bead_value": 23843, "fluorescence": 11650, "events": 4000, "cv": 0.04, "status": "fitted"},'
         ' {"bead_value": 62336, "fluorescence": 29860, "events": 4000, "cv": 0.04, "status": "fitted"}]')
LEGACY_MEASUREMENT = (
    "INSERT INTO measurements (file_sha256, patient_id, collection_date, icu_day, in_window, monocytes, statistic, "
    "pe_statistic, abc, abc_low, abc_high, below_threshold, category, qc_status, qc_reasons, calibration_id, gates, "
    "software_version, created) VALUES (:sha, 'PT-0042', '2026-03-12', 7, true, 4000, 'median', 3000, 6100, 5900, "
    "6300, true, 'immunosuppressed', 'pass', '[]', 1, :gates, '0.1.0', '2026-03-12 10:00:00')")


def test_results_written_by_0001_are_converted(settings):  # noqa: F811
    engine = make_engine(settings.effective_database_url)
    config = alembic_config()
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text(LEGACY_CALIBRATION), {"sha": sha(1), "peaks": PEAKS})
        conn.execute(text(LEGACY_MEASUREMENT), {"sha": sha(2), "gates": '{"counts": {"monocytes": 4000}, '
                                                '"notes": ["a note"], "analysed_at": "2026-03-12T10:00:00+00:00"}'})
    engine.dispose()
    with open_store(settings) as store:
        cal = store.calibrations.get(1).calibration
        assert cal.key.acquired.date() == date(2026, 3, 12) and cal.curve.slope == pytest.approx(1.02)
        assert [p.fluorescence for p in cal.populations] == pytest.approx([251.1, 2698, 11650, 29860])
        assert cal.curve.f_min == pytest.approx(251.1) and cal.curve.f_max == pytest.approx(29860)
        assert cal.to_abc(3000.0) == pytest.approx(10 ** (1.02 * 3.4771212547 + 0.23))
        meas = store.measurements.of_file(sha(2)).measurement
        assert meas.notes == ("a note",) and meas.gates == {"counts": {"monocytes": 4000}}
        assert meas.analysed_at.isoformat() == "2026-03-12T10:00:00+00:00"
        assert meas.calibration.key == cal.key and meas.calibration.to_abc(3000.0) == cal.to_abc(3000.0)
