"""The FCS reader against the real corpus (../shared/real_fcs, MANIFEST.md) and flowio as oracle."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import fcsio
from pipeline.acquisition import Channel, same_setting
from pipeline.errors import InputError
from pipeline.fcs import read_fcs


def manifest_rows(folder: Path) -> list[dict[str, str]]:
    """Rows of the MANIFEST's 'FCS files' table: path, $TOT, $PAR, note."""
    rows = []
    in_table = False
    for line in (folder / "MANIFEST.md").read_text().splitlines():
        if line.startswith("| relative path |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            break
        if in_table and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows.append({"path": cells[0].strip("`"), "tot": cells[7], "par": cells[8], "note": cells[10]})
    return rows


@pytest.fixture(scope="module")
def corpus(real_fcs: Path) -> list[dict[str, str]]:
    rows = manifest_rows(real_fcs)
    assert len(rows) == 68, "the MANIFEST lists 68 FCS files"
    return rows


def test_every_valid_file_reads_with_manifest_counts(real_fcs: Path, corpus: list[dict[str, str]]) -> None:
    right, wrong = 0, []
    for row in corpus:
        path = real_fcs / row["path"]
        if "NEGATIVE TEST" in row["note"]:
            continue
        try:
            acq = read_fcs(path)
        except InputError as err:
            wrong.append(f"{row['path']}: {err.code} {err.message}")
            continue
        if acq.n_events == int(row["tot"]) and len(acq.channels) == int(row["par"]) \
                and acq.events.shape == (int(row["tot"]), int(row["par"])) and np.isfinite(acq.events).all():
            right += 1
        else:
            wrong.append(f"{row['path']}: {acq.events.shape} != ({row['tot']}, {row['par']})")
    assert not wrong, wrong
    assert right == 66


def test_negative_files_raise_typed_errors(real_fcs: Path, corpus: list[dict[str, str]]) -> None:
    negatives = {row["path"] for row in corpus if "NEGATIVE TEST" in row["note"]}
    assert negatives == {"fcsparser/corrupted/corrupted.fcs", "fcsparser/cytek-nl-2000/sample_header.fcs"}
    with pytest.raises(InputError) as err:
        read_fcs(real_fcs / "fcsparser/corrupted/corrupted.fcs")
    assert err.value.code == "not_fcs" and "corrupted.fcs" in str(err.value)
    with pytest.raises(InputError) as err:
        read_fcs(real_fcs / "fcsparser/cytek-nl-2000/sample_header.fcs")
    assert err.value.code == "truncated" and "sample_header.fcs" in str(err.value)


def _flowio_raw(path: Path) -> np.ndarray | None:
    """flowio's own undecoded values, where flowio can read the file at all."""
    import flowio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            try:
                fd = flowio.FlowData(str(path), ignore_offset_error=True, ignore_offset_discrepancy=True)
            except flowio.exceptions.MultipleDataSetsError:
                fd = flowio.read_multiple_data_sets(str(path), ignore_offset_error=True)[0]
            return fd.as_array(preprocess=False)
        except Exception:  # flowio's documented gaps: 24-bit, packed, blank offsets, no $DATATYPE
            return None


def _our_raw(path: Path) -> np.ndarray:
    return fcsio.read_data(path)


def test_raw_values_match_flowio_where_flowio_reads(real_fcs: Path, corpus: list[dict[str, str]]) -> None:
    compared = 0
    for row in corpus:
        if "NEGATIVE TEST" in row["note"]:
            continue
        path = real_fcs / row["path"]
        theirs = _flowio_raw(path)
        if theirs is None:
            continue
        ours = _our_raw(path)
        assert ours.shape == theirs.shape, row["path"]
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, err_msg=row["path"])
        compared += 1
    assert compared >= 50


@pytest.mark.parametrize("rel", ["cytoflow/instruments/Cytek xP5.fcs", "FlowCal/examples/FCFiles/sample001.fcs"])
def test_24_bit_integers_decode_inside_their_range(real_fcs: Path, rel: str) -> None:
    acq = read_fcs(real_fcs / rel)
    fsc = acq.column("FSC")
    assert fsc.min() >= 0 and fsc.max() <= 1023          # 10-bit values in 24-bit words
    assert np.unique(fsc).size > 200                      # real spread, not a constant or garbage
    fl1 = acq.column("FL1")                               # log-amplified: 10**(4*ch/1024)
    assert 1.0 <= fl1.min() and fl1.max() <= 1e4


def test_multi_data_set_rule_and_choice(real_fcs: Path) -> None:
    path = real_fcs / "cytoflow/instruments/Beckman Coulter - Gallios.LMD"
    first = read_fcs(path)
    second = read_fcs(path, data_set=1)
    assert (first.data_set, first.data_sets, first.fcs_version) == (0, 2, "2.0")
    assert (second.data_set, second.events.shape, second.fcs_version) == (1, (26383, 5), "3.0")
    muse = read_fcs(real_fcs / "fcsparser/GuavaMuse/Guava Muse.fcs", data_set=2)
    assert muse.n_events == 111496 and muse.data_sets == 4
    with pytest.raises(InputError) as err:
        read_fcs(path, data_set=5)
    assert err.value.code == "unsupported"


def test_fc500_10_bit_values_in_16_bit_words(real_fcs: Path) -> None:
    acq = read_fcs(real_fcs / "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD")
    fs = acq.column("FS Lin")
    assert fs.max() <= 1023 and np.unique(fs).size > 200
    # the FCS 3.0 data set of the same file holds the same events: scatter must correlate
    linear = read_fcs(real_fcs / "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD", data_set=1)
    r = np.corrcoef(fs, linear.events[:, 0])[0, 1]
    assert r > 0.95


def test_unused_high_bits_are_masked(real_fcs: Path) -> None:
    acq = read_fcs(real_fcs / "cytoflow/instruments/System II listmode with extra info in bits D10-D15.LMD")
    for ch in acq.channels:
        if ch.log_decades == 0:
            assert acq.column(ch.name).max() < 1024, ch.name


def test_quirks_are_reported_as_notes(real_fcs: Path) -> None:
    accuri = read_fcs(real_fcs / "cytoflow/instruments/Accuri - C6.fcs")
    assert any("HEADER" in n and "TEXT" in n for n in accuri.notes)
    assert accuri.spillover is not None and accuri.spillover.matrix.shape == (8, 8)
    large = read_fcs(real_fcs / "fcsparser/fake_large_fcs/fake_large_fcs.fcs")
    assert large.n_events == 11585
    # keywords after a run of padding spaces ($DATATYPE here) still count: keys are stripped
    partec = read_fcs(real_fcs / "cytoflow/instruments/Partec - CyFlow v2.9.fcs")
    assert partec.n_events == 72989 and partec.channel("FSC").log_decades == 3


def test_log_float_data_stay_linear(real_fcs: Path) -> None:
    """FCS 3.1 3.3.34: float data are linear whatever $PnE says (DIVA 4.1 writes 4,0 on floats)."""
    acq = read_fcs(real_fcs / "cytoflow/module_examples/itn_02.fcs")
    hla = acq.column("HLADr")
    assert hla.max() > 1000 and hla.min() >= 1.0


def test_same_setting_tolerates_round_trips_only() -> None:
    assert same_setting(None, None)
    assert not same_setting(None, 0.0) and not same_setting(500.0, None)
    assert same_setting(500.0, float(np.float32(500.1)) - 0.1 + 1e-5)   # float32/text round trip
    assert not same_setting(500.0, 501.0)
    assert same_setting(0.0, 1e-12) and not same_setting(0.0, 1e-6)


def _channel(name: str, rng: float, gain: float | None, decades: float, offset: float) -> Channel:
    return Channel(0, name, "", rng, 16, None, gain, decades, offset)


def test_linear_range_follows_the_decoding() -> None:
    """Log: offset (0 read as 1) .. offset*10**decades; linear: 0 .. $PnR/gain; Time: no gain."""
    assert _channel("FL2-H", 1024, 1.0, 4, 0).linear_range == pytest.approx((1.0, 1e4))
    assert _channel("FL2-H", 1024, 1.0, 4, 0.1).linear_range == pytest.approx((0.1, 1e3))
    assert _channel("PE-A", 262144, 2.0, 0, 0).linear_range == pytest.approx((0.0, 131072.0))
    assert _channel("PE-A", 262144, None, 0, 0).linear_range == pytest.approx((0.0, 262144.0))
    assert _channel("Time", 262144, 0.01, 0, 0).linear_range == pytest.approx((0.0, 262144.0))


def test_decoded_integers_stay_inside_the_linear_range(real_fcs: Path) -> None:
    """Integer data (log and linear amplifiers, FACSCalibur) decode inside ``linear_range``."""
    acq = read_fcs(real_fcs / "FlowKit/gate_ref/data1.fcs")
    assert any(ch.log_decades > 0 for ch in acq.channels) and any(ch.log_decades == 0 for ch in acq.channels)
    for ch in acq.channels:
        if not ch.is_time:
            low, high = ch.linear_range
            col = acq.column(ch.name)
            assert col.min() >= low * (1 - 1e-6) and col.max() <= high * (1 + 1e-6), ch.name


def test_roles_from_markers_and_fluorochromes(real_fcs: Path) -> None:
    comp = read_fcs(real_fcs / "FlowKit/test_comp_example.fcs")
    assert comp.roles.pe == "PE-A" and comp.roles.cd14 == "PerCP-Cy55-A"
    assert comp.roles.fsc_a == "FSC-A" and comp.roles.ssc_a == "SSC-A"
    calibur = read_fcs(real_fcs / "FlowKit/gate_ref/data1.fcs")
    assert calibur.roles.pe and calibur.roles.pe.startswith("FL2")
    assert calibur.roles.cd14 and calibur.roles.cd14.startswith("FL3")


def test_raw_hospital_ids_are_never_taken(real_fcs: Path) -> None:
    path = real_fcs / "cytoflow/module_examples/itn_02.fcs"      # PATIENT ID is a raw number
    raw_id = fcsio.read_text(path)["PATIENT ID"]
    acq = read_fcs(path)
    assert raw_id and acq.patient_id is None
    assert all(raw_id not in n for n in acq.notes)


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        read_fcs(tmp_path / "nope.fcs")
    assert err.value.code == "not_fcs"
    text = tmp_path / "notes.txt"
    text.write_text("not a cytometry file at all, but long enough to hold a header " * 3)
    with pytest.raises(InputError) as err:
        read_fcs(text)
    assert err.value.code == "not_fcs" and re.search("notes.txt", str(err.value))


def test_the_reader_library_answers_on_its_own(real_fcs: Path, tmp_path: Path) -> None:
    """fcsio's face (read header, read text, read data) against the manifest, and its typed errors."""
    lmd = real_fcs / "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD"
    sets = fcsio.read_header(lmd)
    assert len(sets) == 2 and sets[0].version == "2.0" and sets[1].version == "3.0"
    text = fcsio.read_text(lmd, data_set=1)
    events = fcsio.read_data(lmd, data_set=1)
    assert events.shape == (int(text["$TOT"]), int(text["$PAR"])) == (sets[1].tot, sets[1].par)
    with pytest.raises(fcsio.FcsError) as err:
        fcsio.read_data(lmd, data_set=2)
    assert err.value.code == "unsupported"
    with pytest.raises(fcsio.FcsError) as err:
        fcsio.read_header(tmp_path / "nope.fcs")
    assert err.value.code == "not_fcs" and "nope.fcs" in str(err.value)
