"""``mhladr analyze`` against the generator's ground truth, and each failure case of issue 4."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from data_samples.generate import CALIBUR, CANTO, make_bead_tube, make_patient_tube, write_tube
from app.cli import main

LOT_A = (474.0, 5359.0, 23843.0, 62336.0)


def analyze(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["analyze", *args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _truth(data_samples: Path) -> dict[str, dict]:
    return json.loads((data_samples / "truth.json").read_text())["files"]


def _beads_for(truth: dict[str, dict], tube: dict) -> str:
    return next(name for name, t in truth.items() if t["kind"] == "beads" and t["instrument"] == tube["instrument"]
                and t["pe_voltage"] == tube["pe_voltage"] and t["acquired"][:10] == tube["acquired"][:10])


def test_every_sample_tube_against_its_truth(data_samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _truth(data_samples)
    rows = []
    for name, tube in sorted(truth.items()):
        if tube["kind"] != "sample":
            continue
        code, doc, _ = analyze(capsys, str(data_samples / name), "--beads", str(data_samples / _beads_for(truth, tube)),
                               "--lots", str(data_samples / "lots.csv"), "--registry", str(data_samples / "registry.csv"))
        assert code == 0
        error = abs(doc["abc"] - tube["abc"])
        rows.append((name, tube["abc"], doc["abc"], error / tube["abc"]))
        assert error <= max(0.03 * tube["abc"], 100.0), rows[-1]
        assert doc["below_threshold"] is tube["below_threshold"], name
        assert doc["category"] == tube["category"], name
        assert (doc["icu_day"], doc["in_window"]) == (tube["icu_day"], tube["in_window"]), name
        assert doc["qc"]["status"] in ("pass", "review"), (name, doc["qc"])
        low, high = doc["abc_interval"]
        assert low < doc["abc"] < high and high / low < 1.5, name   # bimodal HLA-DR widens it
        assert doc["patient_id"] == tube["patient_id"] and doc["sha256"] and doc["calibration"]["sha256"]
    assert len(rows) >= 6


@pytest.fixture(scope="module")
def canto_beads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("beads")
    return write_tube(make_bead_tube(CANTO, LOT_A, seed=11, filename="BEADS_2026-03-12_lotA_CANTO.fcs"), folder)


def _sample(tmp_path: Path, instrument=CANTO, **kw) -> tuple[Path, dict]:
    kw.setdefault("abc", 6000.0)
    kw.setdefault("collection_date", date(2026, 3, 12))
    kw.setdefault("icu_admission", date(2026, 3, 5))
    kw.setdefault("patient_id", "PT-0901")
    tube = make_patient_tube(instrument, seed=kw.pop("seed", 5), **kw)
    return write_tube(tube, tmp_path), tube.truth


def test_wrong_panel_names_cd14(tmp_path: Path, canto_beads: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _sample(tmp_path, with_cd14=False)
    code, doc, err = analyze(capsys, str(path), "--beads", str(canto_beads), "--lot-values", "474,5359,23843,62336")
    assert code == 2
    assert doc["error"]["code"] == "wrong_panel" and "CD14" in doc["error"]["message"]
    assert err.startswith(f"{path}: ") and "CD14" in err and "Traceback" not in err


def test_voltage_mismatch_fails_naming_both(tmp_path: Path, canto_beads: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _sample(tmp_path, pe_voltage=500.0)
    code, doc, _ = analyze(capsys, str(path), "--beads", str(canto_beads), "--lot-values", "474,5359,23843,62336")
    assert code == 0
    assert doc["qc"]["status"] == "fail" and doc["below_threshold"] is None
    assert any("450" in r and "500" in r for r in doc["qc"]["reasons"]), doc["qc"]


def test_few_monocytes_review_then_fail(tmp_path: Path, canto_beads: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    statuses = {}
    for fraction in (0.03, 0.0075):        # ~1,200 and ~300 monocytes of 40,000 events
        path, truth = _sample(tmp_path / str(fraction), monocyte_fraction=fraction)
        _, doc, _ = analyze(capsys, str(path), "--beads", str(canto_beads), "--lot-values", "474,5359,23843,62336")
        statuses[fraction] = (doc["qc"]["status"], truth["n_monocytes"], doc["monocytes"])
        assert any("monocytes" in r for r in doc["qc"]["reasons"])
    assert statuses[0.03][0] == "review" and statuses[0.0075][0] == "fail", statuses


def test_sample_outside_bead_range_is_review(tmp_path: Path, canto_beads: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _sample(tmp_path, abc=150000.0)       # above the top bead (62,336)
    _, doc, _ = analyze(capsys, str(path), "--beads", str(canto_beads), "--lot-values", "474,5359,23843,62336")
    assert doc["qc"]["status"] == "review"
    said = [r for r in doc["qc"]["reasons"] if "above the highest bead (62,336 PE/bead)" in r]
    assert said and "extrapolated" in said[0], doc["qc"]["reasons"]
    about = float(re.search(r"AB/C about ([\d,]+)", said[0]).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert about == pytest.approx(doc["abc"], rel=0.05)


def test_calibration_status_passes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    beads = write_tube(make_bead_tube(CANTO, LOT_A, seed=3, missing_levels=(1,),
                                      filename="BEADS_2026-03-12_lotA_CANTO.fcs"), tmp_path)
    path, _ = _sample(tmp_path)
    _, doc, _ = analyze(capsys, str(path), "--beads", str(beads), "--lot-values", "474,5359,23843,62336")
    assert doc["calibration"]["qc"]["status"] in ("review", "fail")
    assert doc["qc"]["status"] == doc["calibration"]["qc"]["status"]
    assert any(r.startswith("calibration: ") and "5,359" in r or "5359" in r for r in doc["qc"]["reasons"])


def test_icu_day_from_keyword_without_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    beads = write_tube(make_bead_tube(CALIBUR, LOT_A, seed=4, filename="BEADS_2026-03-12_lotA_CALIBUR.fcs"),
                       tmp_path)
    path, truth = _sample(tmp_path, instrument=CALIBUR, abc=3000.0, icu_admission=date(2026, 3, 4))
    _, doc, _ = analyze(capsys, str(path), "--beads", str(beads), "--lot-values", "474,5359,23843,62336")
    assert doc["icu_day"] == 8 and doc["in_window"] is True
    assert abs(doc["abc"] - truth["abc"]) <= max(0.03 * truth["abc"], 100.0)
    assert doc["below_threshold"] is True and doc["category"] == "severe"
