"""The console's charts (pipeline/report/figures.py): a tube's acquisition stability, a patient's
AB/C over ICU days, the Levey-Jennings control of bead curves per instrument and lot."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from calibration.curve import fit_curve
from pipeline.eligibility import Rules
from pipeline.qc_trend import ControlPoint
from pipeline.report.chart import Band, Line, Points, to_png, to_svg
from pipeline.report.figures import levey_jennings_chart, patient_trend_chart, stability_chart, whole_ticks
from pipeline.store import StoredMeasurement
from science.qc import QC
from tests.store_fixtures import calibration, measurement

STABILITY = {"axis": "time", "channel": "Time", "kept": [[0.0, 40.0], [55.0, None]], "excluded_share": 0.12,
             "status": "review", "findings": ["flow paused 15 s at 40 s"],
             "rate": {"position": [5.0, 25.0, 45.0, 65.0], "value": [1.0, 1.05, 0.2, 0.98],
                      "flagged": [False, False, True, False]},
             "pe": {"position": [10.0, 30.0, 60.0], "value": [1.0, 1.01, 0.99], "flagged": [False, False, False]},
             "cd14": {"position": [10.0, 30.0, 60.0], "value": [1.0, 0.97, 1.02], "flagged": [False, False, False]}}


def marks(chart, kind):  # noqa: ANN001, ANN201
    return [m for p in chart.panels for m in p.marks if isinstance(m, kind)]


def test_stability_chart_draws_each_series_the_flagged_bins_and_the_kept_stretches() -> None:
    chart = stability_chart(STABILITY)
    assert [p.title for p in chart.panels] == ["monocyte level / run level", "flow rate / median"]
    assert chart.title.startswith("Acquisition stability: review, 12% of the run excluded; flow paused")
    flagged = [m for m in marks(chart, Points) if m.legend == "flagged bin"]
    assert [(m.xs, m.ys) for m in flagged] == [((45.0,), (0.2,))]
    assert [(b.x0, b.x1) for b in marks(chart, Band)] == [(0.0, 40.0), (55.0, None)] * 2
    assert {m.label for m in marks(chart, Line) if m.label} == {"PE (HLA-DR)", "CD14", "events per second"}
    assert "<svg" in to_svg(chart) and "flagged bin" in to_svg(chart)
    without_time = stability_chart({**STABILITY, "axis": "event", "rate": None})
    assert len(without_time.panels) == 1 and without_time.panels[0].xlabel == "event (acquisition order)"


def stored(n: int, day: int, abc: float | None, qc: str = "pass", review: str | None = None) -> StoredMeasurement:
    meas = replace(measurement(n, "PT-0001", date(2026, 3, 1 + day), abc, qc=QC(qc, ("r",) if qc != "pass" else ())),
                   icu_day=day)
    return StoredMeasurement(n, datetime(2026, 3, 20, tzinfo=timezone.utc), None, review, meas)


def test_patient_trend_shows_how_each_result_counts_with_the_cut_off_and_the_window() -> None:
    results = [stored(1, 3, 9000.0), stored(2, 6, 7500.0, "review", "approve"), stored(3, 7, 6000.0, "review"),
               stored(4, 8, 5000.0, "fail"), stored(5, 9, None, "fail")]
    chart = patient_trend_chart(results, Rules())
    (panel,) = chart.panels
    points = {m.legend: m for m in marks(chart, Points)}
    assert {k: v.xs for k, v in points.items()} == {"QC pass": (3.0,), "review approved": (6.0,),
                                                    "awaiting review": (7.0,), "not counted": (8.0,)}
    assert points["awaiting review"].marker == "x" and points["QC pass"].ys == (9000.0,)
    (window,) = marks(chart, Band)
    assert (window.x0, window.x1) == (4.5, 10.5)
    cut_off = [m for m in marks(chart, Line) if m.label and m.label.startswith("cut-off")]
    assert cut_off[0].ys == (8000.0, 8000.0) and cut_off[0].dash
    assert panel.xticks == tuple(float(d) for d in range(0, 13)) and panel.ylim[1] > 16000
    assert patient_trend_chart([], Rules()).panels[0].note == "no result with an ICU day and a value"


def point(day: int, slope: float, mean: float | None = None, sd: float | None = None,
          flags: tuple[str, ...] = ()) -> ControlPoint:
    return ControlPoint("FACSCanto II", "V1", "PE-A", date(2026, 3, day), day, slope, 0.1, 3 if mean else 0,
                        mean, sd, 0.1 if mean else None, 0.01 if mean else None, flags)


def test_levey_jennings_chart_marks_points_beyond_two_sd_and_draws_the_limits() -> None:
    points = [point(1, 1.0), point(2, 1.01), point(3, 0.99), point(4, 1.0, 1.0, 0.01),
              point(5, 1.08, 1.0, 0.01, ("slope 1.0800 outside mean ± 2 SD",))]
    chart = levey_jennings_chart(points, "Levey-Jennings", first_run=11)
    slope = chart.panels[0]
    kinds = {m.legend: m.xs for m in slope.marks if isinstance(m, Points)}
    assert kinds == {"too little history": (11.0, 12.0, 13.0), "in control": (14.0,), "beyond 2 SD": (15.0,)}
    upper = next(m for m in slope.marks if isinstance(m, Line) and m.label == "± 2 SD")
    assert upper.xs == (13.5, 14.5, 14.5, 15.5) and upper.ys == pytest.approx((1.02,) * 4)
    assert chart.title == "Levey-Jennings: 1 curve(s) beyond 2 SD" and slope.xticks == (11.0, 12.0, 13.0, 14.0, 15.0)


def test_whole_ticks_stay_on_whole_numbers_and_few() -> None:
    assert whole_ticks(12) == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0)
    assert whole_ticks(30) == tuple(float(v) for v in range(0, 31, 5))
    assert len(whole_ticks(10_000, first=1)) <= 13


def test_explicit_ticks_reach_both_renderers(tmp_path: Path) -> None:
    chart = patient_trend_chart([stored(1, 6, 5000.0)], Rules())
    svg = to_svg(chart)
    assert all(f'text-anchor="middle">{d}</text>' in svg for d in range(0, 13))
    assert to_png(chart, tmp_path / "trend.png").read_bytes()[:4] == b"\x89PNG"


def test_bead_trends_group_by_instrument_channel_and_lot(tmp_path: Path) -> None:
    from app.console.views import bead_trends
    from pipeline.config import load_settings
    from pipeline.store import open_store

    def cal(n: int, day: int, lot: str, power: float = 1.0):  # noqa: ANN202 - a Calibration
        base = calibration(n, day=date(2026, 3, day))
        curve = fit_curve([p.bead_value ** power for p in base.populations], [p.bead_value for p in base.populations])
        return replace(base, key=replace(base.key, lot=lot), curve=curve)

    with open_store(load_settings(env={"MHLADR_HOME": str(tmp_path)})) as store:
        for n, day in enumerate(range(1, 6)):
            store.calibrations.add(cal(n, day, "lotA", 1.0 + 0.002 * (n % 2)))
        store.calibrations.add(cal(10, 6, "lotA", 1.2))                          # slope 1/1.2: out of control
        store.calibrations.add(cal(11, 6, "lotB"))
        trends = bead_trends(store)
    assert [(t.lot, len(t.points)) for t in trends] == [("lotA", 6), ("lotB", 1)]
    assert trends[0].flagged == 1 and trends[0].points[-1].flags and trends[1].flagged == 0
    assert "<svg" in trends[0].chart
