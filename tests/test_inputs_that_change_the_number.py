"""Inputs that change the number are validated: the spillover matrix and the PE channel's scale."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from calibration.scale import ChannelScale, scale_findings
from data_samples.generate import CALIBUR, CANTO, LYRIC, make_bead_tube, make_patient_tube, write_tube
from gating.compensation import spillover_problems
from pipeline.channel_scale import channel_scale
from app.cli import main
from pipeline.errors import InputError
from pipeline.fcs import read_fcs

LOT_A = (474.0, 5359.0, 23843.0, 62336.0)
NAMES = ("PE-A", "PerCP-Cy5-5-A")


# --- the spillover matrix --------------------------------------------------------------------

@pytest.mark.parametrize("matrix, words", [
    (np.array([[1.0, np.nan], [0.02, 1.0]]), "not finite"),
    (np.array([[1.0, 0.15], [1.0, 0.15]]), "diagonal not 1"),
    (np.array([[1.0, 1.0], [1.0, 1.0]]), "singular"),
    (np.array([[1.0, 1e30], [0.02, 1.0]]), "singular, not invertible in double precision (condition number"),
    (np.array([[1.0, 40.0], [0.02, 1.0]]), "ill-conditioned (condition number"),
    (np.array([[100.0, 15.0], [2.0, 100.0]]), "diagonal not 1"),
    (np.eye(3), "must be square, 2 x 2"),
])
def test_spillover_problems_are_named(matrix: np.ndarray, words: str) -> None:
    problems = spillover_problems(NAMES, matrix)
    assert problems and any(words in p for p in problems), problems


def test_sound_matrices_pass() -> None:
    assert spillover_problems(NAMES, np.array([[1.0, 0.15], [0.02, 1.0]])) == []
    names, matrix = make_patient_tube(LYRIC, abc=5000.0, events=500, seed=1).spillover
    assert spillover_problems(names, matrix) == []


def _canto_with_spillover(folder: Path, value: str) -> Path:
    tube = make_patient_tube(CANTO, abc=6000.0, seed=5, collection_date=date(2026, 3, 12),
                             patient_id="PT-0910", filename="PT-0910_D07_HLADR.fcs")
    return write_tube(dataclasses.replace(tube, keywords=tube.keywords | {"$SPILLOVER": value}), folder)


@pytest.mark.parametrize("value, words", [
    ("2,PE-A,PerCP-Cy5-5-A,1,nan,0.02,1", "not finite"),
    ("2,PE-A,PerCP-Cy5-5-A,1,0.15,1,0.15", "diagonal not 1"),
    ("2,PE-A,PerCP-Cy5-5-A,1,0.15,0.15,1.0e-9", "diagonal not 1"),
    ("2,PE-A,PerCP-Cy5-5-A,1,1e30,0.02,1", "singular"),
    ("2,PE-A,PerCP-Cy5-5-A,1,40,0.02,1", "ill-conditioned"),
    ("2,PE-A,PerCP-Cy5-5-A,1,0.15,0.02", "holds 2 names and 3 values"),
    ("2,PE-A,PerCP-Cy5-5-A,1,0.15,x,1", "not a readable spillover matrix"),
    ("2,PE-A,APC-A,1,0.15,0.02,1", "names channel 'APC-A'"),
])
def test_absurd_matrix_is_a_typed_corrupt_error(tmp_path: Path, value: str, words: str) -> None:
    path = _canto_with_spillover(tmp_path, value)
    with pytest.raises(InputError) as err:
        read_fcs(path)
    assert err.value.code == "corrupt" and "$SPILLOVER" in err.value.message and words in err.value.message


def test_analyze_exits_2_naming_the_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    beads = write_tube(make_bead_tube(CANTO, LOT_A, seed=11, filename="BEADS_2026-03-12_lotA_CANTO.fcs"), tmp_path)
    path = _canto_with_spillover(tmp_path, "2,PE-A,PerCP-Cy5-5-A,1,0.15,1,0.15")
    code = main(["analyze", str(path), "--beads", str(beads), "--lot-values", "474,5359,23843,62336", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["error"]["code"] == "corrupt"
    assert err.startswith(f"{path}: ") and "$SPILLOVER" in err and "Traceback" not in err


def test_channels_without_coefficients_declare_no_matrix(tmp_path: Path) -> None:
    acq = read_fcs(_canto_with_spillover(tmp_path, "2,PE-A,PerCP-Cy5-5-A"))
    assert acq.spillover is None and any("no coefficients" in n for n in acq.notes)


def test_reordered_spillover_compensates_like_the_truth(tmp_path: Path) -> None:
    tube = make_patient_tube(LYRIC, abc=6000.0, events=3000, seed=2)
    acq = read_fcs(write_tube(tube, tmp_path))
    assert acq.spillover.channels == ("PerCP-Cy5.5-A", "APC-A", "FITC-A", "PE-A")
    assert [c.name for c in acq.channels][4:8] == ["FITC-A", "PE-A", "PerCP-Cy5.5-A", "APC-A"]
    expected = tube.compensated()
    for name in ("PE-A", "PerCP-Cy5.5-A"):
        j = [p.name for p in tube.parameters].index(name)
        np.testing.assert_allclose(acq.column(name), expected[:, j], rtol=1e-4, atol=0.5)


# --- the PE channel's scale ------------------------------------------------------------------

BEADS_SCALE = ChannelScale("FL2-H", datatype="I", bits=16, range=1024.0, log_decades=4.0, log_offset=0.0, gain=1.0)


@pytest.mark.parametrize("change, words", [
    ({"log_decades": 0.0}, ("$PnE 4,0 (4-decade log)", "$PnE 0,0 (linear)")),
    ({"log_decades": 5.0}, ("$PnE 4,0", "$PnE 5,0")),
    ({"range": 4096.0}, ("$PnR 1024", "$PnR 4096")),
    ({"gain": 2.0}, ("$PnG 1", "$PnG 2")),
    ({"datatype": "F", "bits": 32}, ("$DATATYPE I", "$DATATYPE F", "$PnB 16", "$PnB 32")),
])
def test_scale_mismatch_is_a_fail_naming_both_settings(change: dict, words: tuple[str, ...]) -> None:
    findings = scale_findings(BEADS_SCALE, dataclasses.replace(BEADS_SCALE, **change))
    assert findings and all(status == "fail" for status, _ in findings)
    text = " ".join(reason for _, reason in findings)
    assert all(w in text for w in words), text


def test_same_scale_has_no_finding() -> None:
    assert scale_findings(BEADS_SCALE, dataclasses.replace(BEADS_SCALE, channel="FL2-H")) == []
    assert scale_findings(BEADS_SCALE, dataclasses.replace(BEADS_SCALE, datatype=None)) == []   # unknown: not compared


@pytest.mark.parametrize("old, new, words", [
    (b"/$P4E/4,0/", b"/$P4E/0,0/", "amplifier differs"),
    (b"/$P4E/4,0/", b"/$P4E/5,0/", "amplifier differs"),
    (b"/$P4R/1024/", b"/$P4R/4096/", "range differs"),
])
def test_scale_read_from_the_files(tmp_path: Path, old: bytes, new: bytes, words: str) -> None:
    """FACSCalibur tubes whose PE keywords differ from their bead tube's: what the issue found
    passing with 26,320 or 169 AB/C is a QC fail naming both settings, with no decision."""
    from pipeline.bead_calibration import calibrate_file
    from pipeline.config import load_settings
    from pipeline.lots import Lot
    from pipeline.measurement import measure

    beads = read_fcs(write_tube(make_bead_tube(CALIBUR, LOT_A, seed=4), tmp_path))
    sample_path = write_tube(make_patient_tube(CALIBUR, abc=7800.0, seed=6), tmp_path)
    sample = read_fcs(sample_path)
    assert scale_findings(channel_scale(beads, beads.roles.pe), channel_scale(sample, sample.roles.pe)) == []
    edited = tmp_path / "edited.fcs"
    edited.write_bytes(sample_path.read_bytes().replace(old, new, 1))
    changed = read_fcs(edited)
    findings = scale_findings(channel_scale(beads, beads.roles.pe), channel_scale(changed, changed.roles.pe))
    assert [s for s, _ in findings] == ["fail"] and words in findings[0][1]
    settings = load_settings(env={})
    result, _ = measure(changed, calibrate_file(beads, Lot("lotA", LOT_A), settings), settings)
    assert result.qc.status == "fail" and result.below_threshold is None
    assert any(words in r for r in result.qc.reasons)
