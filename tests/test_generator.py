"""The synthetic data generator: determinism, FCS compliance (flowio as oracle), ground truth."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import flowio
import numpy as np
import pytest

from data_samples import fcs_writer
from data_samples.generate import (CALIBUR, CANTO, LYRIC, THRESHOLD, Drift, Interruption, category, fcs_bytes,
                                   make_bead_tube, make_patient_tube, write_tube)
from data_samples.populations import MONOCYTE_LABELS
from data_samples.sample_set import LOTS, write_sample_set

LOT_A = LOTS["lotA"]
GENERATED = re.compile(r"^(.*\.fcs|truth\.json|lots\.csv|registry\.csv|README\.md)$")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _text(path: Path) -> dict[str, str]:
    """TEXT keywords parsed here (independently of the writer), delimiter escapes undone."""
    raw = path.read_bytes()
    begin, end = int(raw[10:18]), int(raw[18:26])
    text = raw[begin:end + 1].decode("utf-8")
    delim = text[0]
    tokens = [t.replace("\0", delim) for t in text[1:-1].replace(delim * 2, "\0").split(delim)]
    return dict(zip(tokens[::2], tokens[1::2]))


# --- determinism and the committed set -------------------------------------------------------

def test_two_runs_are_byte_identical(tmp_path: Path) -> None:
    first = write_sample_set(tmp_path / "a")
    second = write_sample_set(tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    assert all(_sha(a) == _sha(b) for a, b in zip(first, second))


def test_another_seed_gives_other_events() -> None:
    a = make_patient_tube(CANTO, abc=9000, events=2000, seed=1)
    b = make_patient_tube(CANTO, abc=9000, events=2000, seed=2)
    assert fcs_bytes(a) != fcs_bytes(b)


def test_committed_files_equal_a_fresh_regeneration(tmp_path: Path, data_samples: Path) -> None:
    fresh = {p.name: _sha(p) for p in write_sample_set(tmp_path)}
    committed = {p.name: _sha(p) for p in data_samples.iterdir() if GENERATED.match(p.name)}
    assert committed == fresh, "data_samples/ drifted: run `python -m data_samples`"


def test_committed_set_fits_the_budget(data_samples: Path) -> None:
    total = sum(p.stat().st_size for p in data_samples.iterdir() if GENERATED.match(p.name))
    assert total <= 10 * 1024 * 1024


# --- FCS structure, read back with flowio as the independent oracle --------------------------

def test_fcs31_float_reads_back(tmp_path: Path) -> None:
    tube = make_patient_tube(CANTO, abc=7000, events=3000, seed=5)
    path = write_tube(tube, tmp_path / "canto.fcs")
    fd = flowio.FlowData(str(path))
    assert fd.version == "3.1" and fd.event_count == 3000
    assert fd.pnn_labels == [p.name for p in tube.parameters]
    data = fd.as_array(preprocess=False)
    np.testing.assert_allclose(data, tube.events, rtol=2 ** -23, atol=1e-6)
    text = _text(path)
    assert text["$DATATYPE"] == "F" and text["$BYTEORD"] == "1,2,3,4" and text["$MODE"] == "L"
    assert text["$SPILLOVER"] == "2,PE-A,PerCP-Cy5-5-A,1,0.15,0.02,1"
    assert text["$P5N"] == "PE-A" and text["$P5S"] == "HLA-DR" and text["$P5V"] == "450"
    assert re.fullmatch(r"\d\d-[A-Z]{3}-\d{4}", text["$DATE"])
    assert text["TUBE NAME"] == "HLA-DR/CD14" and text["COLLECTION DATE"] == "2026-03-12"
    size = path.stat().st_size
    assert int(text["$ENDDATA"]) == size - 1
    assert int(text["$BEGINDATA"]) == int(path.read_bytes()[26:34])
    assert int(text["$ENDDATA"]) - int(text["$BEGINDATA"]) + 1 == 3000 * 7 * 4


def test_fcs20_int16_channels_match(tmp_path: Path) -> None:
    tube = make_patient_tube(CALIBUR, abc=3000, events=3000, seed=6)
    path = write_tube(tube, tmp_path / "calibur.fcs")
    fd = flowio.FlowData(str(path))
    assert fd.version == "2.0" and fd.event_count == 3000
    raw = fd.as_array(preprocess=False)
    text = _text(path)
    assert text["$DATATYPE"] == "I" and text["$BYTEORD"] == "4,3,2,1" and "$SPILLOVER" not in text
    assert "FSC-A" not in fd.pnn_labels and fd.pnn_labels[3:5] == ["FL2-H", "FL3-H"]
    for j, p in enumerate(tube.parameters):
        v = tube.events[:, j]
        assert text[f"$P{j + 1}B"] == "16" and text[f"$P{j + 1}R"] == "1024"
        if p.name.startswith("FL"):
            assert text[f"$P{j + 1}E"] == "4,0"
            expected = np.clip(np.rint(256.0 * np.log10(np.maximum(v, 1.0))), 0, 1023)
        else:
            assert text[f"$P{j + 1}E"] == "0,0"
            expected = np.clip(np.rint(v), 0, 1023)
        np.testing.assert_array_equal(raw[:, j], expected)
    assert int(path.read_bytes()[34:42]) == path.stat().st_size - 1


@pytest.mark.parametrize("pad", range(880, 960, 7))
def test_data_offsets_stay_consistent_across_digit_boundaries(pad: int) -> None:
    params = (fcs_writer.FcsParameter("A", 262144, 32),)
    content = fcs_writer.fcs31_float_bytes(params, np.ones((3, 1)), {"NOTE": "x" * pad})
    begin, end = int(content[26:34]), int(content[34:42])
    text = content[58:begin].decode()
    assert f"/$BEGINDATA/{begin}/" in text and f"/$ENDDATA/{end}/" in text
    assert end == len(content) - 1 and end - begin + 1 == 12
    assert int(content[18:26]) == begin - 1


def test_delimiters_in_values_are_doubled(tmp_path: Path) -> None:
    params = (fcs_writer.FcsParameter("A/B", 1024, 16),)
    path = tmp_path / "escape.fcs"
    path.write_bytes(fcs_writer.fcs20_int16_bytes(params, np.array([[1], [2]]), {"PANEL": "a//b c/d"}))
    assert b"/PANEL/a////b c//d/" in path.read_bytes()
    fd = flowio.FlowData(str(path))
    assert fd.text["panel"] == "a//b c/d" and fd.pnn_labels == ["A/B"]
    assert _text(path)["PANEL"] == "a//b c/d"
    with pytest.raises(ValueError, match="start with the delimiter"):
        fcs_writer.fcs20_int16_bytes(params, np.array([[1]]), {"PANEL": "/a"})


def test_writer_rejects_what_the_standard_forbids() -> None:
    p32, p16 = fcs_writer.FcsParameter("A", 262144, 32), fcs_writer.FcsParameter("A", 1024, 16)
    with pytest.raises(ValueError, match="empty"):
        fcs_writer.fcs31_float_bytes((p32,), np.ones((1, 1)), {"K": ""})
    with pytest.raises(ValueError, match="duplicate"):
        fcs_writer.fcs31_float_bytes((p32,), np.ones((1, 1)), {"$tot": "1"})
    with pytest.raises(ValueError, match="0..\\$PnR"):
        fcs_writer.fcs20_int16_bytes((p16,), np.array([[1024]]), {})


# --- ground truth ----------------------------------------------------------------------------

def test_category_boundaries() -> None:
    assert [category(v) for v in (4999, 5000, 7999, 8000, 14999, 15000)] == [
        "severe", "immunosuppressed", "immunosuppressed", "reduced", "reduced", "normal"]


@pytest.mark.parametrize("instrument", [CANTO, CALIBUR], ids=lambda i: i.key)
def test_patient_truth_comes_from_the_generated_monocytes(instrument) -> None:
    tube = make_patient_tube(instrument, abc=7800, events=8000, seed=11, cd14_dim_fraction=0.2,
                             collection_date=date(2026, 3, 14), icu_admission=date(2026, 3, 3))
    t = tube.truth
    mono = np.isin(tube.particles.label, MONOCYTE_LABELS)
    assert t["abc"] == pytest.approx(np.median(tube.particles.pe_molecules[mono]), rel=1e-5)
    assert t["n_monocytes"] == mono.sum() and 0 < t["n_monocytes_cd14dim"] < t["n_monocytes"]
    assert t["below_threshold"] == (t["abc"] < THRESHOLD) and t["category"] == category(t["abc"])
    assert (t["icu_day"], t["in_window"]) == (11, False)
    assert t["abc"] == pytest.approx(7800, rel=0.05)
    # A perfect gate + the true curve sees the monocytes' autofluorescence and noise only.
    assert t["abc_from_true_curve"] == pytest.approx(t["abc"], rel=0.05)


@pytest.mark.parametrize("instrument", [CANTO, CALIBUR], ids=lambda i: i.key)
def test_bead_truth_recovers_the_true_curve(instrument) -> None:
    tube = make_bead_tube(instrument, LOT_A, events=6000, seed=3)
    t = tube.truth
    med = np.array([lv["median_fluorescence_compensated"] for lv in t["levels"]])
    slope, intercept = np.polyfit(np.log10(med), np.log10(LOT_A), 1)
    assert slope == pytest.approx(t["slope"], abs=0.02)
    assert intercept == pytest.approx(t["intercept"], abs=0.05)
    assert all(0.02 < lv["cv"] < 0.07 for lv in t["levels"])
    assert sum(lv["events"] for lv in t["levels"]) + t["doublets"] + t["debris"] == 6000


def test_missing_saturated_and_blank_levels() -> None:
    tube = make_bead_tube(CANTO, LOT_A, events=4000, seed=4, missing_levels=(0,), blank_fraction=0.05)
    levels = tube.truth["levels"]
    assert levels[0]["events"] == 0 and levels[0]["median_fluorescence"] is None
    assert tube.truth["missing_levels"] == [1] and tube.truth["blank"]["events"] > 100
    sat = make_bead_tube(CALIBUR, LOT_A, events=4000, seed=4, saturate_top=True)
    assert sat.truth["pe_voltage"] > CALIBUR.pe_voltage
    assert [lv["saturated"] for lv in sat.truth["levels"]] == [False, False, False, True]
    with pytest.raises(ValueError):
        make_bead_tube(CANTO, LOT_A, saturate_top=True, pe_voltage=500)


def test_pe_voltage_scales_the_response_consistently() -> None:
    low = make_patient_tube(CANTO, abc=6000, events=6000, seed=8)
    high = make_patient_tube(CANTO, abc=6000, events=6000, seed=8, pe_voltage=500)
    ratio = high.truth["monocyte_pe_median"] / low.truth["monocyte_pe_median"]
    assert ratio == pytest.approx((500 / 450) ** CANTO.voltage_exponent, rel=0.03)
    assert high.truth["abc_from_true_curve"] == pytest.approx(low.truth["abc_from_true_curve"], rel=0.03)
    beads = make_bead_tube(CANTO, LOT_A, events=3000, seed=8, pe_voltage=500)
    assert beads.truth["intercept"] == pytest.approx(high.truth["intercept"], abs=1e-6)
    assert beads.parameters[high.index("pe")].voltage == 500


def test_canto_data_are_uncompensated() -> None:
    tube = make_bead_tube(CANTO, LOT_A, events=3000, seed=9)
    top = tube.particles.label == "bead_4"
    pe, percp = tube.decoded()[top, tube.index("pe")], tube.decoded()[top, tube.index("cd14")]
    assert np.median(percp / pe) == pytest.approx(0.15, abs=0.01)
    assert abs(np.median(tube.compensated()[top, tube.index("cd14")])) < 0.01 * np.median(pe)


def test_wrong_panel_has_no_percp_parameter(tmp_path: Path) -> None:
    for instrument in (CANTO, CALIBUR):
        tube = make_patient_tube(instrument, abc=5000, events=1000, with_cd14=False)
        names = flowio.FlowData(str(write_tube(tube, tmp_path / f"{instrument.key}.fcs"))).pnn_labels
        assert instrument.channel_by_role("cd14").name not in names


def test_committed_truth_tells_the_scenario(data_samples: Path) -> None:
    doc = json.loads((data_samples / "truth.json").read_text())
    files = doc["files"]
    samples = [t for t in files.values() if t["kind"] == "sample"]
    beads = {(t["instrument"], t["acquired"][:10], t["pe_voltage"]) for t in files.values() if t["kind"] == "beads"}
    assert len(samples) >= 6 and {t["instrument"] for t in samples} == {"CANTO", "CALIBUR"}
    few = [t["patient_id"] for t in samples if t["n_monocytes"] < 3000]
    assert few == ["PT-0052"]                 # the one tube that genuinely needs a technician's review
    for t in samples:
        assert (t["instrument"], t["collection_date"], t["pe_voltage"]) in beads
        assert t["n_monocytes"] >= (500 if t["patient_id"] == "PT-0052" else 3000)
        assert t["category"] == category(t["abc"]) and t["below_threshold"] == (t["abc"] < THRESHOLD)
        icu_day = (date.fromisoformat(t["collection_date"]) - date.fromisoformat(t["icu_admission"])).days
        assert t["icu_day"] == icu_day and t["in_window"] == (5 <= icu_day <= 10)
    abcs = sorted(t["abc"] for t in samples)
    assert abcs[0] < 3000 and abcs[-1] > 20_000
    assert any(7000 < a < THRESHOLD for a in abcs) and any(THRESHOLD < a < 9500 for a in abcs)
    assert any(not t["in_window"] for t in samples)
    registry = (data_samples / "registry.csv").read_text().splitlines()
    assert registry[0] == "patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,randomized_at"
    assert {row.split(",")[0] for row in registry[1:]} == {t["patient_id"] for t in samples}


# --- round trip through the project's reader (once it exists) --------------------------------

@pytest.mark.parametrize("instrument", [CANTO, CALIBUR], ids=lambda i: i.key)
def test_round_trip_through_read_fcs(tmp_path: Path, instrument) -> None:
    from pipeline.fcs import read_fcs

    tube = make_patient_tube(instrument, abc=6500, events=4000, seed=12, patient_id="PT-0777",
                             collection_date=date(2026, 3, 12), icu_admission=date(2026, 3, 6))
    path = write_tube(tube, tmp_path)
    acq = read_fcs(path)
    assert [c.name for c in acq.channels] == [p.name for p in tube.parameters]
    assert acq.n_events == 4000 and acq.serial == instrument.serial
    assert acq.acquired is not None and acq.acquired.date() == date(2026, 3, 12)
    assert (acq.patient_id, acq.collection_date) == ("PT-0777", date(2026, 3, 12))
    assert acq.roles.pe == tube.roles["pe"] and acq.roles.cd14 == tube.roles["cd14"]
    assert acq.channel(tube.roles["pe"]).voltage == pytest.approx(instrument.pe_voltage)
    expected = tube.events.copy()
    if instrument.is_log:
        assert acq.spillover is None and acq.compensated
        half_step = 0.5 * 4.0 / 1024
        for j, p in enumerate(tube.parameters):
            got, want = acq.events[:, j], expected[:, j]
            if p.log_decades:
                assert np.max(np.abs(np.log10(got) - np.log10(want))) <= half_step + 1e-6  # float32 events
            else:
                assert np.max(np.abs(got - want)) <= 0.5 + 1e-9
    else:
        expected[:, tube.index("time")] *= 0.01  # read_fcs gives Time in seconds ($TIMESTEP)
        raw = read_fcs(path, compensate_data=False)
        np.testing.assert_allclose(raw.events, expected, rtol=2 ** -23, atol=1e-6)
        comp = tube.compensated().copy()
        comp[:, tube.index("time")] *= 0.01
        np.testing.assert_allclose(acq.events, comp, rtol=1e-5, atol=1e-2)   # the reader compensates
        assert acq.spillover is not None and acq.spillover.channels == tube.spillover[0]
        np.testing.assert_allclose(acq.spillover.matrix, tube.spillover[1])


# --- what septic blood and real acquisitions bring ------------------------------------------

def test_septic_populations_and_their_truth() -> None:
    tube = make_patient_tube(CANTO, abc=6000, events=20000, seed=13, cd14_dim_fraction=0.3, cd14_dim_hladr=0.5,
                             immature_granulocyte_fraction=0.15, eosinophil_fraction=0.05, lyse_no_wash=0.3)
    pops, t = tube.truth["populations"], tube.truth
    assert pops["immature_granulocyte"] == pytest.approx(3000, rel=0.1)
    assert pops["eosinophil"] == pytest.approx(1000, rel=0.15)
    assert pops["red_cell_ghost"] + pops["platelet"] == pytest.approx(6000, rel=0.1)
    labels, pe = tube.particles.label, tube.particles.pe_molecules
    assert np.all(pe[np.isin(labels, ("immature_granulocyte", "eosinophil", "red_cell_ghost", "platelet"))] == 0)
    dim, bright = pe[labels == "monocyte_cd14dim"], pe[labels == "monocyte"]
    assert np.median(dim) / np.median(bright) == pytest.approx(0.5, rel=0.1)
    assert t["abc_cd14_bright"] == pytest.approx(np.median(bright), rel=1e-5) and t["abc"] < t["abc_cd14_bright"]
    ig = labels == "immature_granulocyte"
    ssc = tube.particles.ssc
    assert np.median(ssc[labels == "monocyte"]) < np.median(ssc[ig]) < np.median(ssc[labels == "granulocyte"])
    empty = make_patient_tube(CANTO, abc=6000, events=2000, seed=1, monocyte_fraction=0.0)
    assert empty.truth["abc"] is None and empty.truth["n_monocytes"] == 0


def test_lyric_flavour_big_endian_with_a_reordered_spillover(tmp_path: Path) -> None:
    tube = make_patient_tube(LYRIC, abc=5000, events=3000, seed=7)
    path = write_tube(tube, tmp_path / "lyric.fcs")
    text = _text(path)
    assert text["$BYTEORD"] == "4,3,2,1" and text["$DATATYPE"] == "F" and text["$P6S"] == "HLA-DR"
    assert text["$P7N"] == "PerCP-Cy5.5-A" and text["$P7S"] == "CD14"
    assert text["$SPILLOVER"].startswith("4,PerCP-Cy5.5-A,APC-A,FITC-A,PE-A,")
    fd = flowio.FlowData(str(path))                        # the independent reader agrees
    np.testing.assert_allclose(fd.as_array(preprocess=False), tube.events, rtol=2 ** -23, atol=1e-6)
    assert fd.pnn_labels[4:8] == ["FITC-A", "PE-A", "PerCP-Cy5.5-A", "APC-A"]


def test_drift_fades_the_end_of_the_run_in_acquisition_order() -> None:
    calm = make_patient_tube(CANTO, abc=6000, events=8000, seed=3)
    fading = make_patient_tube(CANTO, abc=6000, events=8000, seed=3, drift=Drift(start=0.6, drop=0.4))
    pe = calm.index("pe")
    ratio = fading.events[:, pe] / calm.events[:, pe]
    mono = np.isin(calm.particles.label, MONOCYTE_LABELS)
    head, tail = mono & (np.arange(8000) < 4000), mono & (np.arange(8000) > 7800)
    assert np.median(ratio[head]) == pytest.approx(1.0, abs=0.01)
    assert np.median(ratio[tail]) == pytest.approx(0.6, abs=0.05)
    time = fading.events[:, fading.index("time")]
    assert np.all(np.diff(time) >= 0) and fading.truth["faults"] == [Drift().as_dict()]


def test_interruption_leaves_a_gap_then_a_burst() -> None:
    tube = make_patient_tube(LYRIC, abc=6000, events=10000, seed=4,
                             interruption=Interruption(at=0.5, gap_seconds=20.0, burst_fraction=0.05, burst_rate=5.0))
    seconds = tube.events[:, tube.index("time")] * 0.01
    gaps = np.diff(seconds)
    assert gaps.max() == pytest.approx(20.0, abs=0.05) and int(np.argmax(gaps)) == 4999
    burst, before = np.diff(seconds[5001:5500]).mean(), np.diff(seconds[1000:4000]).mean()
    assert burst == pytest.approx(before / 5.0, rel=0.25)
    with pytest.raises(ValueError):
        Interruption(at=1.5)
