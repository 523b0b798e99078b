"""Bead calibration on FlowCal's real rainbow bead files, against FlowCal 1.3.1 itself.

FlowCal's reference pipeline (its examples/analyze_mef.py and experiment.xlsx): to_rfi,
start_end(250, 100), high_low and density2d(0.85) on FSC/SSC, then mef.get_transform_fxn
clustering on FL1 and FL3 (np.random seeded: FlowCal labels events by sampling posteriors).
We find the populations on the same channels (FL1 measured, FL3 for clustering) when asked,
and by default on every fluorescence channel that carries the bead levels (FL1, FL2, FL3).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.fcs import read_fcs

# (path, FL1 MEFL per level, blank first) from the corpus MANIFEST.md
FILES = {
    "FlowCal/examples/FCFiles/sample001.fcs": (0, 792, 2079, 6588, 16471, 47497, 137049, 271647),
    "FlowCal/examples/FCFiles/min/sample001.fcs": (0, 771, 2106, 6262, 15183, 45292, 136258, 291042),
    "FlowCal/examples/FCFiles/max/sample002.fcs": (0, 792, 2079, 6588, 16471, 47497, 137049, 271647),
    "FlowCal/history/2016/Beads006.fcs": (0, 646, 1704, 4827, 15991, 47609, 135896, 273006),
}
# The clustering channels FlowCal uses on all four files (experiment.xlsx; the 2016 example script).
CLUSTERING = ("FL1", "FL3")
# In FL1 alone the blank and the two dimmest levels overlap (Ashman's D < 2) on these files.
SINGLE_CHANNEL_RESOLVED_FROM = 3


def _read(path):
    return read_fcs(path)


def _flowcal_medians(path, values):
    import FlowCal as flowcal   # the reference, installed with the test extra
    np.random.seed(0)
    data = flowcal.io.FCSData(str(path))
    data = flowcal.transform.to_rfi(data)
    data = flowcal.gate.start_end(data, num_start=250, num_end=100)
    data = flowcal.gate.high_low(data, channels=["FSC", "SSC"])
    data = flowcal.gate.density2d(data, channels=["FSC", "SSC"], gate_fraction=0.85)
    out = flowcal.mef.get_transform_fxn(data, mef_values=[list(values)], mef_channels=["FL1"],
                                        clustering_channels=list(CLUSTERING), full_output=True)
    return np.asarray(out.statistic["values"][0], dtype=float)


@pytest.fixture(scope="module")
def comparisons(real_fcs):
    from pipeline.bead_calibration import calibrate_file
    from pipeline.config import load_settings
    from pipeline.lots import Lot
    settings = load_settings(env={})
    rows = {}
    for rel, values in FILES.items():
        acq = _read(real_fcs / rel)
        lot = Lot(None, tuple(float(v) for v in values))
        rows[rel] = (calibrate_file(acq, lot, settings, channel="FL1", clustering_channels=CLUSTERING),
                     calibrate_file(acq, lot, settings, channel="FL1", clustering_channels=("FL1",)),
                     _flowcal_medians(real_fcs / rel, values),
                     calibrate_file(acq, lot, settings, channel="FL1"))
    return rows


def _medians(cal):
    return np.array([np.nan if p.fluorescence is None else p.fluorescence for p in cal.populations])


@pytest.mark.parametrize("rel", FILES)
def test_every_level_found_blank_first(comparisons, rel):
    cal, _, _, _ = comparisons[rel]
    assert not cal.missing_levels and not cal.extra_populations
    assert cal.populations[0].status == "blank"
    assert cal.clustering_channels == ("FL3",)


@pytest.mark.parametrize("rel", FILES)
def test_medians_agree_with_flowcal_on_every_level(comparisons, rel):
    cal, _, reference, _ = comparisons[rel]
    np.testing.assert_allclose(_medians(cal), reference, rtol=0.02)


@pytest.mark.parametrize("rel", FILES)
def test_default_chooses_the_bead_channels_and_agrees_with_flowcal(comparisons, rel):
    """No flag: the fluorescence channels carrying the levels (FL2, FL3; not the scatter
    widths/areas FSCW, FSCA, SSCW, SSCA, which also correlate) and FlowCal's medians within 2 %."""
    _, _, reference, default = comparisons[rel]
    assert default.clustering_channels == ("FL2", "FL3")
    assert not default.missing_levels and not default.extra_populations
    np.testing.assert_allclose(_medians(default), reference, rtol=0.02)


@pytest.mark.parametrize("rel", FILES)
def test_single_channel_agrees_from_the_resolved_levels_up(comparisons, rel):
    _, single, reference, _ = comparisons[rel]
    assert single.clustering_channels == ()
    np.testing.assert_allclose(_medians(single)[SINGLE_CHANNEL_RESOLVED_FROM:],
                               reference[SINGLE_CHANNEL_RESOLVED_FROM:], rtol=0.02)


def test_saturated_top_excluded_where_flowcal_drops_it(comparisons):
    for rel in ("FlowCal/examples/FCFiles/sample001.fcs", "FlowCal/history/2016/Beads006.fcs"):
        cal, _, _, _ = comparisons[rel]
        assert cal.populations[-1].status == "saturated"
        assert any("excluded: saturated" in r for r in cal.qc.reasons)
    cal, _, _, _ = comparisons["FlowCal/examples/FCFiles/max/sample002.fcs"]
    assert cal.populations[-1].status == "fitted"


def test_decoding_matches_flowcal(real_fcs):
    import FlowCal as flowcal   # the reference, installed with the test extra
    path = real_fcs / "FlowCal/examples/FCFiles/sample001.fcs"
    acq = _read(path)
    ref = flowcal.transform.to_rfi(flowcal.io.FCSData(str(path)))
    np.testing.assert_allclose(acq.column("FL1"), np.asarray(ref[:, "FL1"], dtype=float), rtol=1e-6)  # float32


def test_cli_calibrate_json_and_errors(real_fcs, capsys, tmp_path):
    _read(real_fcs / "FlowCal/examples/FCFiles/sample001.fcs")
    from app.cli import main
    path = str(real_fcs / "FlowCal/examples/FCFiles/sample001.fcs")
    figure = tmp_path / "cal.png"
    code = main(["calibrate", path, "--lot-values", "0,792,2079,6588,16471,47497,137049,271647",
                 "--channel", "FL1", "--figure", str(figure), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("file", "sha256", "instrument", "channel", "voltage", "lot", "bead_values", "peaks",
                "slope", "intercept", "r2", "qc"):
        assert key in doc
    assert doc["channel"] == "FL1" and doc["voltage"] == pytest.approx(850.0)
    assert set(doc["peaks"][0]) >= {"bead_value", "fluorescence", "events", "cv"}
    assert doc["qc"]["status"] in ("pass", "review", "fail") and doc["qc"]["reasons"]
    assert figure.stat().st_size > 10_000
    assert doc["clustering_channels"] == ["FL1", "FL2", "FL3"]          # chosen without a flag
    assert [p["fluorescence"] for p in doc["peaks"]][:3] == pytest.approx([154.0, 198.1, 278.8], rel=0.02)
    code = main(["calibrate", path, "--lot-values", "0,792,2079,6588,16471,47497,137049,271647",
                 "--channel", "FL1", "--clustering-channels", "FL1,FL3", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["clustering_channels"] == ["FL1", "FL3"]
    assert [p["fluorescence"] for p in doc["peaks"]][:3] == pytest.approx([154.0, 198.1, 278.8], rel=0.02)
    code = main(["calibrate", path, "--lot-values", "0,792", "--channel", "FL1",
                 "--clustering-channels", "FL1,FL9", "--json"])
    assert code == 2 and json.loads(capsys.readouterr().out)["error"]["code"] == "bad_input"
    code = main(["calibrate", path, "--lot-values", "0,792,x", "--channel", "FL1", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and json.loads(captured.out)["error"]["code"] == "bad_lot"
    assert captured.err.startswith(path + ": ")
    code = main(["calibrate", path, "--lot-values", "1,2,3", "--json"])
    assert code == 2 and json.loads(capsys.readouterr().out)["error"]["code"] == "wrong_panel"
