"""Bead calibration of the project's generated bead tubes against their ground truth."""

from __future__ import annotations

import pytest

LOT_A = (474.0, 5359.0, 23843.0, 62336.0)


def _calibrate(tmp_path, instrument_key, **kw):
    from data_samples import generate
    from data_samples.instruments import INSTRUMENTS
    from pipeline.bead_calibration import calibrate_file
    from pipeline.fcs import read_fcs
    tube = generate.make_bead_tube(INSTRUMENTS[instrument_key], LOT_A, **kw)
    path = generate.write_tube(tube, tmp_path / tube.truth["file"])
    from pipeline.config import load_settings
    from pipeline.lots import Lot
    return calibrate_file(read_fcs(path), Lot("lotA", LOT_A), load_settings(env={})), tube.truth


@pytest.mark.parametrize("instrument", ["CANTO", "CALIBUR", "LYRIC"])
def test_generated_tube_matches_truth_within_2_percent(tmp_path, instrument):
    cal, truth = _calibrate(tmp_path, instrument, events=20_000, seed=3)
    assert cal.qc.status == "pass", cal.qc.reasons
    assert cal.clustering_channels == ()      # QuantiBRITE PE: only PE carries the levels
    assert cal.key.voltage == pytest.approx(truth["pe_voltage"])
    for p, level in zip(cal.populations, truth["levels"]):
        assert p.fluorescence == pytest.approx(level["median_fluorescence"], rel=0.02)
        assert cal.to_abc(level["median_fluorescence"]) == pytest.approx(p.bead_value, rel=0.02)


@pytest.mark.parametrize("missing", [0, 1, 2, 3])
def test_generated_tube_with_a_missing_population(tmp_path, missing):
    cal, truth = _calibrate(tmp_path, "CANTO", events=20_000, seed=5, missing_levels=(missing,))
    assert cal.missing_levels == (LOT_A[missing],)
    assert cal.qc.status in ("review", "fail")
    assert any(f"{LOT_A[missing]:,.0f} not found" in r for r in cal.qc.reasons)
    for p, level in zip(cal.populations, truth["levels"]):
        if not level["missing"]:
            assert p.fluorescence == pytest.approx(level["median_fluorescence"], rel=0.02)


def test_generated_saturated_top(tmp_path):
    cal, _ = _calibrate(tmp_path, "CANTO", events=20_000, seed=7, saturate_top=True)
    assert cal.populations[-1].status == "saturated"
    assert any("62,336 excluded: saturated" in r for r in cal.qc.reasons)
