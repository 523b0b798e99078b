"""Issue 18: numbers that pre-analytics and set-up errors cannot fool, and an honest call near
8,000 — against the generator's ground truth (data_samples.kinds)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from data_samples.generate import CALIBUR, CANTO, make_bead_tube, make_patient_tube, write_tube
from data_samples.kinds import faulty_tube, without_spillover
from pipeline.preanalytics import SampleLog, check
from science.uncertainty import p_below

LOT_A = (474.0, 5359.0, 23843.0, 62336.0)
ACQUIRED = datetime(2026, 3, 12, 10, 0)


@pytest.fixture(scope="module")
def beads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("beads18")
    return {ins.key: write_tube(make_bead_tube(ins, LOT_A, seed=7, acquired=datetime(2026, 3, 12, 8, 0),
                                               filename=f"BEADS_2026-03-12_lotA_{ins.key}.fcs"), folder)
            for ins in (CANTO, CALIBUR)}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MHLADR_HOME", str(tmp_path / "home"))
    for var in ("MHLADR_SPILLOVER_FILE", "MHLADR_UNKNOWN_DRAW_TIME_REVIEW", "MHLADR_INTER_ASSAY_CV"):
        monkeypatch.delenv(var, raising=False)


def analyze(capsys: pytest.CaptureFixture[str], tube_path: Path, beads_path: Path) -> dict:
    code = main(["analyze", str(tube_path), "--beads", str(beads_path),
                 "--lot-values", ",".join(f"{v:g}" for v in LOT_A), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0, out
    return json.loads(out)


def _rel(a: float, b: float) -> float:
    return abs(a / b - 1.0)


# --- 1. compensation present or refused ---------------------------------------------------------

def test_missing_spillover_is_review_naming_the_spill_and_a_lab_matrix_restores_pass(
        tmp_path: Path, beads: dict[str, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tube = faulty_tube("no_spillover", CANTO, abc=7900.0, seed=3, filename="PT-0900_D07_HLADR.fcs")
    path = write_tube(tube, tmp_path)
    assert b"$SPILLOVER" not in path.read_bytes()
    doc = analyze(capsys, path, beads["CANTO"])
    assert doc["qc"]["status"] == "review"
    reason = next(r for r in doc["qc"]["reasons"] if r.startswith("no compensation"))
    assert "PerCP-Cy5.5" in reason and "PE-A" in reason and "spillover_file" in reason
    assert doc["abc"] > tube.truth["abc"] * 1.01         # uncompensated: CD14 spill reads as HLA-DR

    names, matrix = tube.spillover
    rows = ["serial,source,detector,coefficient"] + [
        f"{CANTO.serial},{names[i]},{names[j]},{float(matrix[i, j])!r}"
        for i in range(len(names)) for j in range(len(names)) if i != j and matrix[i, j] != 0]
    lab = tmp_path / "spillover.csv"
    lab.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("MHLADR_SPILLOVER_FILE", str(lab))
    doc = analyze(capsys, path, beads["CANTO"])
    assert not any("compensation" in r for r in doc["qc"]["reasons"]), doc["qc"]
    assert _rel(doc["abc"], tube.truth["abc"]) < 0.02


def test_hardware_compensated_instrument_is_not_affected(tmp_path: Path, beads: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    tube = make_patient_tube(CALIBUR, abc=6000.0, seed=4, acquired=ACQUIRED, collection_date=ACQUIRED.date(),
                             patient_id="PT-0901", filename="PT-0901_D07_HLADR.fcs")
    doc = analyze(capsys, write_tube(tube, tmp_path), beads["CALIBUR"])
    assert not any("compensation" in r for r in doc["qc"]["reasons"]), doc["qc"]
    assert doc["gates"]["compensation"] == "as stored"


def test_beads_and_tube_must_share_the_compensation_state(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bead_tube = make_bead_tube(CANTO, LOT_A, seed=7, acquired=datetime(2026, 3, 12, 8, 0))
    beads_path = write_tube(without_spillover(bead_tube), tmp_path)
    sample = make_patient_tube(CANTO, abc=6000.0, seed=5, acquired=ACQUIRED, patient_id="PT-0902",
                               collection_date=ACQUIRED.date(), filename="PT-0902_D07_HLADR.fcs")
    doc = analyze(capsys, write_tube(sample, tmp_path), beads_path)
    assert any(r.startswith("compensation differs: beads uncompensated") for r in doc["qc"]["reasons"])


# --- 2. pre-analytics ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind, words", [("late_hours", "9.0 h from draw to acquisition"),
                                         ("late_days", "acquired 2 days after the draw date")])
def test_late_tubes_are_review_naming_the_delay(kind: str, words: str, tmp_path: Path, beads: dict[str, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    tube = faulty_tube(kind, CANTO, abc=7500.0, seed=6, acquired=ACQUIRED, filename="PT-0903_D07_HLADR.fcs")
    doc = analyze(capsys, write_tube(tube, tmp_path), beads["CANTO"])
    assert doc["qc"]["status"] == "review" and any(words in r for r in doc["qc"]["reasons"]), doc["qc"]
    pre = doc["preanalytics"]
    assert pre["drawn_from"] == "keywords" and pre["acquired"].startswith("2026-03-12T10:00")
    if kind == "late_hours":
        assert pre["delay_hours"] == pytest.approx(tube.truth["draw_to_acquisition_hours"], abs=0.02)
    else:
        assert pre["delay_days"] == 2
    assert _rel(doc["abc"], tube.truth["abc"]) < 0.03


def test_draw_time_rules() -> None:
    acq = datetime(2026, 3, 12, 10, 0)
    ok = check(SampleLog(datetime(2026, 3, 12, 7, 30), "EDTA K2", "on ice"), None, acq,
               max_hours=4, unknown_is_review=False)
    assert ok.findings == () and ok.delay_hours == pytest.approx(2.5)
    unknown = check(SampleLog(), None, acq, max_hours=4, unknown_is_review=False)
    assert unknown.findings == () and any("draw time unknown" in n for n in unknown.notes)
    held = check(SampleLog(), None, acq, max_hours=4, unknown_is_review=True)
    assert [s for s, _ in held.findings] == ["review"]
    bad = check(SampleLog(datetime(2026, 3, 12, 9, 0), "heparin", "room temperature"), None, acq,
                max_hours=4, unknown_is_review=False)
    assert len(bad.findings) == 2 and "EDTA" in bad.findings[0][1] and "room temperature" in bad.findings[1][1]
    assert check(SampleLog(storage="22 °C"), date(2026, 3, 12), acq, max_hours=4,
                 unknown_is_review=False).findings[0][0] == "review"
    assert check(SampleLog(storage="2-8 °C"), date(2026, 3, 12), acq, max_hours=4,
                 unknown_is_review=False).findings == ()
    before = check(SampleLog(datetime(2026, 3, 12, 11, 0)), None, acq, max_hours=4, unknown_is_review=False)
    assert "before the draw" in before.findings[0][1]


# --- 3. the call near the cut-off ---------------------------------------------------------------

def test_p_below_threshold_is_a_probability_centred_on_the_cutoff() -> None:
    assert p_below(8000.0, (7800.0, 8200.0), 8000.0, 0.04) == pytest.approx(0.5, abs=1e-9)
    ps = [p_below(v, (v * 0.97, v * 1.03), 8000.0, 0.04) for v in (2500.0, 7000.0, 7900.0, 8100.0, 9500.0)]
    assert ps == sorted(ps, reverse=True) and ps[0] > 0.999 and ps[-1] < 0.001
    # one SD below on the log scale: the interval alone (CV 0) gives Phi(1)
    sd = math.log(1.03 / 0.97) / (2 * 1.959964)
    assert p_below(8000.0 * math.exp(-sd), (7760.0, 8240.0), 8000.0, 0.0) == pytest.approx(0.8413, abs=0.01)
    assert p_below(None, None, 8000.0, 0.04) is None


def test_near_cutoff_and_far_values(tmp_path: Path, beads: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    docs = {}
    for abc in (7900.0, 2500.0):
        tube = make_patient_tube(CANTO, abc=abc, seed=8, acquired=ACQUIRED, collection_date=ACQUIRED.date(),
                                 patient_id="PT-0904", filename=f"PT-0904_{abc:.0f}.fcs")
        docs[abc] = analyze(capsys, write_tube(tube, tmp_path), beads["CANTO"])
    assert docs[7900.0]["near_cutoff"] is True and 0.05 < docs[7900.0]["p_below_threshold"] < 0.95
    assert docs[2500.0]["near_cutoff"] is False and docs[2500.0]["p_below_threshold"] > 0.999
    assert docs[7900.0]["below_threshold"] is (docs[7900.0]["abc"] < 8000.0)   # the rule stays abc < threshold


# --- 4. % HLA-DR+ monocytes ---------------------------------------------------------------------

def test_hla_dr_positive_percent_against_truth(tmp_path: Path, beads: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Half the monocytes HLA-DR negative (30 molecules, within the granulocytes' background):
    about 50 % positive; all bright monocytes: about 100 %."""
    for bimodal, truth in (((0.5, 30.0), 50.0), (None, 100.0)):
        tube = make_patient_tube(CANTO, abc=12000.0, bimodal=bimodal, seed=9, acquired=ACQUIRED,
                                 collection_date=ACQUIRED.date(), patient_id="PT-0905", filename="PT-0905.fcs")
        doc = analyze(capsys, write_tube(tube, tmp_path), beads["CANTO"])
        assert doc["hla_dr_positive_percent"] == pytest.approx(truth, abs=5.0), doc["gates"]["hla_dr_positive"]
        assert doc["gates"]["hla_dr_positive"]["reference_events"] > 1000


# --- 5. no needless holds; above the top bead ---------------------------------------------------

def test_septic_tubes_are_not_held_for_a_shift_within_the_uncertainty(
        tmp_path: Path, beads: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(18)
    held = []
    for i in range(4):
        tube = make_patient_tube(CANTO, abc=float(rng.uniform(12000, 25000)), seed=100 + i, acquired=ACQUIRED,
                                 collection_date=ACQUIRED.date(), patient_id="PT-0906", filename=f"S{i}.fcs",
                                 immature_granulocyte_fraction=0.15, immature_granulocyte_cd14=12000.0,
                                 cd14_dim_fraction=0.25, eosinophil_fraction=0.04, lyse_no_wash=0.2)
        doc = analyze(capsys, write_tube(tube, tmp_path), beads["CANTO"])
        assert _rel(doc["abc"], tube.truth["abc"]) < 0.05
        held += [r for r in doc["qc"]["reasons"] if "CD14-dim" in r]
    assert held == []


def test_dim_shift_that_moves_the_flag_is_held() -> None:
    from pipeline.config import load_settings
    from pipeline.measurement import dim_shift_finding
    s = load_settings({})
    assert dim_shift_finding({"cd14_bright": 8100.0, "with_cd14_dim": 7800.0}, 8100.0, (7900.0, 8300.0), s)
    assert dim_shift_finding({"cd14_bright": 20000.0, "with_cd14_dim": 20900.0}, 20000.0,
                             (19500.0, 20500.0), s) is None
    assert dim_shift_finding({"cd14_bright": 20000.0, "with_cd14_dim": 26000.0}, 20000.0,
                             (19500.0, 20500.0), s)


@pytest.mark.parametrize("kind", ["above_top_bead", "failed_cd14", "bead_carryover"])
def test_generator_kinds(kind: str, tmp_path: Path, beads: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tube = faulty_tube(kind, CANTO, seed=12, acquired=ACQUIRED, collection_date=ACQUIRED.date(),
                       filename="PT-0907_D07_HLADR.fcs")
    doc = analyze(capsys, write_tube(tube, tmp_path), beads["CANTO"])
    assert doc["qc"]["status"] == tube.truth["expected_qc"], doc["qc"]
    if kind == "above_top_bead":
        said = next(r for r in doc["qc"]["reasons"] if "above the highest bead (62,336 PE/bead)" in r)
        assert "extrapolated" in said and _rel(doc["abc"], tube.truth["abc"]) < 0.1
    elif kind == "bead_carryover":
        assert _rel(doc["abc"], tube.truth["abc"]) < 0.03
    else:
        assert doc["below_threshold"] is None and doc["p_below_threshold"] is None and doc["near_cutoff"] is None


def test_screening_names_a_near_call_and_can_ask_for_a_repeat() -> None:
    from pipeline.eligibility import PatientFacts, ResultFacts, Rules, evaluate
    patient = PatientFacts("PT-0908", date(2026, 3, 1), 8, True)
    near = ResultFacts(date(2026, 3, 7), 7950.0, "pass", None, 1, "f1", p_below=0.55, near_cutoff=True)
    far = ResultFacts(date(2026, 3, 8), 2500.0, "pass", None, 2, "f2", p_below=1.0, near_cutoff=False)
    plain = evaluate("PT-0908", patient, [near], date(2026, 3, 8))
    assert plain.status == "eligible" and any("near the cut-off: P(true AB/C below it) 0.55" in r
                                              for r in plain.reasons)
    asked = evaluate("PT-0908", patient, [near], date(2026, 3, 8), Rules(repeat_near_cutoff=True))
    assert asked.status == "pending" and any("repeat sample" in r for r in asked.reasons)
    closed = evaluate("PT-0908", patient, [near], date(2026, 3, 12), Rules(repeat_near_cutoff=True))
    assert closed.status == "eligible"                       # the rule itself stays abc < threshold
    repeated = evaluate("PT-0908", patient, [near, far], date(2026, 3, 8), Rules(repeat_near_cutoff=True))
    assert repeated.status == "eligible" and repeated.abc == 2500.0


def test_blinded_documents_lose_the_call_and_positivity() -> None:
    from pipeline.blinding import withheld_document, withheld_reasons
    doc = withheld_document({"abc": 16000.0, "p_below_threshold": 0.0, "near_cutoff": False,
                             "hla_dr_positive_percent": 97.0, "monocytes": 4000,
                             "gates": {"call": {"p_below_threshold": 0.0}, "hla_dr_positive": {"percent": 97.0},
                                       "counts": {"monocytes": 4000}},
                             "qc": {"status": "review", "reasons": []}})
    assert doc["p_below_threshold"] is None and doc["near_cutoff"] is None and doc["hla_dr_positive_percent"] is None
    assert set(doc["gates"]) == {"counts"}
    shown = withheld_reasons(["AB/C about 68,000, above the highest bead (62,336 PE/bead): extrapolated"])
    assert "68" not in shown[0] and "withheld" in shown[0]


def test_fhir_carries_the_call_and_positivity_as_components() -> None:
    from fhir.resources.R4B.observation import Observation
    from pipeline.sinks.fhir import observation
    from pipeline.store.outbox import versioned
    content = {"patient_id": "PT-1", "collection_date": "2026-03-07", "abc": 7950.0, "threshold": 8000.0,
               "below_threshold": True, "p_below_threshold": 0.55, "near_cutoff": True,
               "hla_dr_positive_percent": 61.5, "qc": {"status": "pass", "reasons": []}, "review": None,
               "file_sha256": "ab" * 32}
    doc = json.loads(observation(versioned(content, None, 1)).model_dump_json())
    Observation.model_validate(doc)
    parts = {c["code"]["coding"][0]["code"]: c for c in doc["component"]}
    assert parts["mhla-dr-p-below-cutoff"]["valueQuantity"]["value"] == pytest.approx(0.55)
    assert parts["mhla-dr-near-cutoff"]["valueBoolean"] is True
    assert parts["mhla-dr-positive-percent"]["valueQuantity"]["unit"] == "%"
    assert any("near the cut-off" in (i.get("text") or "") for i in doc["interpretation"])


def test_registry_collected_at_tube_type_and_storage(tmp_path: Path, beads: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tube = make_patient_tube(CANTO, abc=6000.0, seed=13, acquired=ACQUIRED, collection_date=ACQUIRED.date(),
                             patient_id="PT-0909", filename="PT-0909_D07_HLADR.fcs")
    path = write_tube(tube, tmp_path)
    registry = tmp_path / "registry.csv"
    registry.write_text("patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,collected_at,"
                        "tube_type,storage\nPT-0909,2026-03-05,8,yes,,2026-03-12T04:30,EDTA,room temperature\n")
    code = main(["analyze", str(path), "--beads", str(beads["CANTO"]), "--lot-values",
                 ",".join(f"{v:g}" for v in LOT_A), "--registry", str(registry), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["preanalytics"]["drawn_from"] == "sample log"
    assert doc["preanalytics"]["delay_hours"] == pytest.approx(5.5)
    assert any("5.5 h from draw to acquisition" in r for r in doc["qc"]["reasons"])
    assert any("room temperature" in r for r in doc["qc"]["reasons"])
    assert doc["preanalytics"]["storage"] == "room temperature"


def test_run_reads_the_draw_time_from_the_registry_and_stores_the_new_fields(tmp_path: Path) -> None:
    from pipeline.config import load_settings
    from pipeline.processing import Processor
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_tube(make_bead_tube(CANTO, LOT_A, seed=7, acquired=datetime(2026, 3, 12, 8, 0),
                              filename="BEADS_2026-03-12_lotA_CANTO.fcs"), inbox)
    sample = write_tube(make_patient_tube(CANTO, abc=7900.0, seed=14, acquired=ACQUIRED, patient_id="PT-0910",
                                          collection_date=ACQUIRED.date(), filename="PT-0910_D07_HLADR.fcs"), inbox)
    (inbox / "lots.csv").write_text("lot,low,med_low,med_high,high\nlotA,474,5359,23843,62336\n")
    (inbox / "registry.csv").write_text("patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,"
                                        "collected_at\nPT-0910,2026-03-05,8,yes,,2026-03-12T03:00\n")
    proc = Processor(load_settings(env={"MHLADR_HOME": str(tmp_path / "home")}),
                     registry_csv=inbox / "registry.csv", lots_csv=inbox / "lots.csv")
    try:
        proc.process(inbox / "BEADS_2026-03-12_lotA_CANTO.fcs")
        result = proc.process(sample)
        stored = next(m.measurement for m in proc.store.measurements.list(include_blinded=True))
    finally:
        proc.close()
    assert result.status == "measured"
    assert any("7.0 h from draw to acquisition" in r for r in stored.qc.reasons), stored.qc.reasons
    assert stored.preanalytics["drawn_from"] == "sample log" and stored.near_cutoff is True
    assert stored.hla_dr_positive_percent is not None and 0.05 < stored.p_below_threshold < 0.95


def test_inspect_says_a_matrix_is_needed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = write_tube(faulty_tube("no_spillover", CANTO, seed=15, filename="PT-0911_D07_HLADR.fcs"), tmp_path)
    calibur = write_tube(make_patient_tube(CALIBUR, abc=6000.0, seed=15, filename="PT-0912_D07_HLADR.fcs"), tmp_path)
    needed = {}
    for path in (missing, calibur):
        assert main(["inspect", str(path), "--json"]) == 0
        needed[path.name] = json.loads(capsys.readouterr().out)["compensation"]["needed"]
    assert needed == {"PT-0911_D07_HLADR.fcs": True, "PT-0912_D07_HLADR.fcs": False}
