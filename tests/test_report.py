"""Figures and reports: drawn from stored results and figure data, SVG in reports, PNG on request."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_settings
from pipeline.fcs import read_fcs
from pipeline.lots import read_lots


@pytest.fixture(scope="module")
def measured(data_samples: Path):
    from pipeline.bead_calibration import calibrate_file
    from pipeline.measurement import measure
    from pipeline.report.figure_data import SampleFigure

    settings = load_settings(env={})
    out = {}
    for sample, beads in (("PT-0042_D07_HLADR.fcs", "BEADS_2026-03-12_lotA_CANTO.fcs"),
                          ("PT-0043_D06_HLADR.fcs", "BEADS_2026-03-13_lotA_CALIBUR.fcs")):
        cal = calibrate_file(read_fcs(data_samples / beads, settings), read_lots(data_samples / "lots.csv")["lotA"],
                             settings)
        acq = read_fcs(data_samples / sample, settings)
        meas, gating = measure(acq, cal, settings)
        out[sample] = (meas, SampleFigure.of(acq, gating, meas.pe_statistic, meas.statistic))
    return out


@pytest.mark.parametrize("sample", ["PT-0042_D07_HLADR.fcs", "PT-0043_D06_HLADR.fcs"])
def test_figure_data_saves_and_loads_back(measured, sample: str, tmp_path: Path) -> None:
    from pipeline.report.figure_data import SampleFigure

    meas, figure = measured[sample]
    loaded = SampleFigure.load(figure.save(tmp_path / "f.npz"))
    assert loaded.monocytes == meas.monocytes >= int(figure.gate.foreground.sum()) >= 0.98 * meas.monocytes
    np.testing.assert_array_equal(loaded.gate.background, figure.gate.background)
    assert [o.shape for o in loaded.gate_outlines] == [o.shape for o in figure.gate_outlines]
    assert (loaded.singlet is None) == (sample.startswith("PT-0043"))    # FACSCalibur: no FSC-A
    assert loaded.pe_statistic == pytest.approx(meas.pe_statistic)


@pytest.mark.parametrize("sample", ["PT-0042_D07_HLADR.fcs", "PT-0043_D06_HLADR.fcs"])
def test_gating_chart_as_png_and_svg(measured, sample: str, tmp_path: Path) -> None:
    from pipeline.report.chart import to_png, to_svg
    from pipeline.report.figures import gating_chart

    meas, figure = measured[sample]
    chart = gating_chart(figure, meas.qc, sample)
    path = to_png(chart, tmp_path / "gate.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    svg = to_svg(chart)
    densities = 1 if figure.singlet is None else 2
    assert svg.startswith("<svg") and svg.count("<image") == densities and f"monocytes ({meas.monocytes:,})" in svg
    assert f"QC {meas.qc.status}" in svg


def test_a_failed_result_is_titled_with_its_qc(measured) -> None:
    from pipeline.report.chart import to_svg
    from pipeline.report.figures import gating_chart
    from science.qc import QC

    _, figure = measured["PT-0042_D07_HLADR.fcs"]
    svg = to_svg(gating_chart(figure, QC("fail", ("PE voltage differs",)), "tube"))
    assert "QC fail - PE voltage differs" in svg and "QC pass" not in svg


def test_sample_report_shows_numbers_as_a_person_reads_them(measured, tmp_path: Path) -> None:
    from pipeline.report.html import write_sample_report

    meas, figure = measured["PT-0042_D07_HLADR.fcs"]
    text = write_sample_report(meas, figure, tmp_path / "r.html").read_text()
    assert f"{meas.abc:,.0f}" in text and text.count("<svg") == 3      # gates, acquisition stability, bead curve
    assert "Acquisition stability: pass" in text
    assert not re.search(r"\d\.\d{6,}", re.sub(r"<svg.*?</svg>", "", text, flags=re.S)), "raw floats in the report"
    assert "True" not in text and "False" not in text


def test_ticks_are_round_and_inside() -> None:
    from pipeline.report.chart import tick_label, ticks

    assert ticks(0, 262144) == [0, 50000, 100000, 150000, 200000, 250000]
    assert [tick_label(t) for t in ticks(0, 262144)] == ["0", "50k", "100k", "150k", "200k", "250k"]
    assert ticks(-0.13, 0.13) == pytest.approx([-0.1, -0.05, 0, 0.05, 0.1])


def test_a_stored_tube_has_its_report_and_gates_beside_it(tmp_path: Path, data_samples: Path) -> None:
    """The batch draws each report after storing and links the tube's GatingML next to it."""
    from pipeline.processing import Processor
    from pipeline.report.layout import gating_ml_path, report_path

    proc = Processor(load_settings(env={"MHLADR_HOME": str(tmp_path / "home")}), lots_csv=data_samples / "lots.csv")
    try:
        proc.process(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs")
        result = proc.process(data_samples / "PT-0042_D07_HLADR.fcs")
    finally:
        proc.close()
    report = Path(result.fields["report"])
    gates = gating_ml_path(proc.reports_dir, result.file, result.sha256)
    assert report == report_path(proc.reports_dir, result.file, result.sha256) and report.is_file()
    assert gates.is_file() and 'id="monocytes"' in gates.read_text()
    assert f'href="{gates.name}"' in report.read_text()


def test_cd14_dim_monocytes_are_converted_both_ways(tmp_path: Path) -> None:
    """A tube with CD14-dim monocytes of lower HLA-DR: the AB/C with and without them, and by how much."""
    from datetime import date

    from data_samples.generate import CANTO, make_bead_tube, make_patient_tube, write_tube
    from pipeline.bead_calibration import calibrate_file
    from pipeline.lots import Lot
    from pipeline.measurement import measure

    lot = (474.0, 5359.0, 23843.0, 62336.0)
    settings = load_settings(env={})
    beads = read_fcs(write_tube(make_bead_tube(CANTO, lot, seed=1), tmp_path))
    tube = make_patient_tube(CANTO, abc=7000.0, seed=5, cd14_dim_fraction=0.3, cd14_dim_hladr=0.4,
                             collection_date=date(2026, 3, 12))
    meas, _ = measure(read_fcs(write_tube(tube, tmp_path)), calibrate_file(beads, Lot("lotA", lot), settings),
                      settings)
    both = meas.gates["abc_alternatives"]
    assert both["with_cd14_dim"] < both["cd14_bright"]
    shift = both["with_cd14_dim"] / both["cd14_bright"] - 1.0
    assert any(n.startswith("CD14-dim monocytes at the monocytes' scatter") and f"{shift:.1%}" in n
               for n in meas.notes)
    assert meas.abc in (pytest.approx(both["with_cd14_dim"]), pytest.approx(both["cd14_bright"]))


def test_a_decision_redraws_the_report_with_its_next_step(tmp_path: Path, data_samples: Path, monkeypatch,
                                                          capsys) -> None:
    """After `mhladr review approve`, the tube's report no longer asks for a decision."""
    from app.cli import main
    from pipeline.processing import Processor

    home = tmp_path / "home"
    monkeypatch.setenv("MHLADR_HOME", str(home))
    proc = Processor(load_settings(), lots_csv=data_samples / "lots.csv")
    try:
        proc.process(data_samples / "BEADS_2026-03-13_lotA_CALIBUR.fcs")
        result = proc.process(data_samples / "PT-0052_D06_HLADR.fcs")
    finally:
        proc.close()
    report = Path(result.fields["report"])
    assert result.fields["qc"]["status"] == "review" and "approve or reject with" in report.read_text()
    assert main(["review", "approve", str(result.fields["measurement_id"]), "--reason", "1,4xx monocytes, clean"]) == 0
    capsys.readouterr()
    assert "approve or reject with" not in report.read_text()
