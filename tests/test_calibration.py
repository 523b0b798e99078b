"""Bead calibration on synthetic bead tubes with known truth (seeded numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.bead_gate import Scatter, gate_beads
from calibration.calibrate import calibrate_beads
from calibration.config import CalibrationQCConfig
from calibration.curve import fit_curve
from calibration.joint_peaks import ClusteringChannels
from calibration.assignment import assign_levels
from science.statistics import log_statistic_se, mad_sd, percentile_sd, population_statistic, robust_cv

QUANTIBRITE = (474.0, 5359.0, 23843.0, 62336.0)
RAINBOW8 = (0.0, 792.0, 2079.0, 6588.0, 16471.0, 47497.0, 137049.0, 271647.0)
RAINBOW6 = (0.0, 2079.0, 6588.0, 16471.0, 47497.0, 137049.0)
SLOPE, INTERCEPT = 1.03, 0.45        # truth: log10(bead value) = SLOPE * log10(F) + INTERCEPT
TOP = 262144.0


def true_f(value: float) -> float:
    return 10 ** ((np.log10(value) - INTERCEPT) / SLOPE)


def bead_tube(values, counts=None, *, missing=(), cv=0.06, seed=1, debris=0.05, doublets=0.03,
              slope=SLOPE, intercept=INTERCEPT):
    """Fluorescence + scatter of a bead tube; blank beads (value 0) sit at 40 +- 25 (linear)."""
    rng = np.random.default_rng(seed)
    counts = counts or [4000] * len(values)
    parts = []
    for v, n in zip(values, counts):
        if v in missing:
            continue
        if v == 0:
            parts.append(rng.normal(40.0, 25.0, n))
        else:
            f = 10 ** ((np.log10(v) - intercept) / slope)
            parts.append(f * np.exp(rng.normal(0.0, cv, n)))
    fl = np.concatenate(parts)
    n = fl.size
    fsc_h = rng.normal(60000, 2500, n)
    fsc_a = fsc_h * rng.normal(1.25, 0.02, n)
    ssc = rng.normal(20000, 1500, n)
    n_deb, n_dbl = int(debris * n), int(doublets * n)
    deb_fl = 10 ** rng.uniform(0.5, 5.0, n_deb)
    deb_h = 10 ** rng.uniform(2.5, 4.0, n_deb)
    dbl_fl = rng.choice(fl, n_dbl) + rng.choice(fl, n_dbl)
    dbl_h = rng.normal(75000, 3000, n_dbl)
    fl = np.concatenate([fl, deb_fl, dbl_fl])
    fsc_h = np.concatenate([fsc_h, deb_h, dbl_h])
    fsc_a = np.concatenate([fsc_a, deb_h * 1.25, dbl_h * 2.1])
    ssc = np.concatenate([ssc, 10 ** rng.uniform(2.0, 4.0, n_deb), rng.normal(38000, 2500, n_dbl)])
    clip = lambda x: np.clip(x, None, TOP - 1)  # noqa: E731 - the ADC ceiling
    scatter = Scatter(fsc=clip(fsc_a), ssc=clip(ssc), fsc_range=(0.0, TOP), ssc_range=(0.0, TOP),
                      fsc_h=clip(fsc_h), fsc_h_range=(0.0, TOP))
    return clip(fl), scatter


def calibrate(values, **kw):
    fl, scatter = bead_tube(values, **{k: v for k, v in kw.items() if k in
                                       ("counts", "missing", "cv", "seed", "slope", "intercept")})
    return calibrate_beads(fl, values, channel_range=(0.0, TOP), scatter=scatter)


def test_complete_quantibrite_passes_within_2_percent():
    cal = calibrate(QUANTIBRITE)
    assert cal.qc.status == "pass", cal.qc.reasons
    assert [p.status for p in cal.populations] == ["fitted"] * 4
    for p in cal.populations:
        assert p.fluorescence == pytest.approx(true_f(p.bead_value), rel=0.02)
        assert cal.to_abc(true_f(p.bead_value)) == pytest.approx(p.bead_value, rel=0.02)
    assert cal.curve.slope == pytest.approx(SLOPE, abs=0.02)
    assert cal.curve.r2 > 0.999


def test_gate_removes_debris_and_doublets():
    fl, scatter = bead_tube(QUANTIBRITE, seed=3)
    gate = gate_beads(scatter)
    n_beads = 4 * 4000
    assert gate.mask[:n_beads].mean() > 0.95          # beads kept
    assert gate.mask[n_beads:].mean() < 0.05          # debris and doublets dropped


@pytest.mark.parametrize("area", ["fsc", "ssc"])
def test_clipped_area_scatter_falls_back_to_height(area):
    """An area channel piled at the top of its range is replaced by its height, and noted."""
    fl, scatter = bead_tube(QUANTIBRITE, seed=3)
    clipped = np.full_like(getattr(scatter, area), TOP - 1)
    if area == "fsc":
        scatter = Scatter(fsc=clipped, ssc=scatter.ssc, fsc_range=(0.0, TOP), ssc_range=(0.0, TOP),
                          fsc_h=scatter.fsc_h, fsc_h_range=(0.0, TOP))
    else:
        ssc_h = scatter.ssc / 1.2                       # the height, below the clipped area
        scatter = Scatter(fsc=scatter.fsc, ssc=clipped, fsc_range=(0.0, TOP), ssc_range=(0.0, TOP),
                          fsc_h=scatter.fsc_h, fsc_h_range=(0.0, TOP), ssc_h=ssc_h, ssc_h_range=(0.0, TOP))
    gate = gate_beads(scatter)
    assert any(note.startswith(f"{area.upper()} area at the top") for note in gate.counts.notes)
    assert gate.mask[:4 * 4000].mean() > 0.9
    without_height = gate_beads(Scatter(fsc=scatter.fsc, ssc=scatter.ssc, fsc_range=(0.0, TOP),
                                        ssc_range=(0.0, TOP)))
    assert without_height.kept < 10                     # every event at the edge: nothing to gate


@pytest.mark.parametrize("missing", QUANTIBRITE)
def test_missing_level_is_named_and_others_keep_their_values(missing):
    cal = calibrate(QUANTIBRITE, missing=(missing,))
    assert cal.missing_levels == (missing,)
    assert cal.qc.status in ("review", "fail")
    assert any(f"{missing:,.0f} not found" in r for r in cal.qc.reasons)
    for p in cal.populations:
        if p.bead_value != missing:
            assert p.status == "fitted"
            assert p.fluorescence == pytest.approx(true_f(p.bead_value), rel=0.02)


def test_blank_found_not_fitted_and_saturated_top_excluded():
    # Brighter instrument: the top level's beads pile at the ADC ceiling.
    values = (0.0, 474.0, 5359.0, 23843.0, 62336.0)
    cal = calibrate(values, intercept=-0.8)
    blank, *_, top = cal.populations
    assert blank.status == "blank" and blank.fluorescence == pytest.approx(40.0, abs=5.0)
    assert top.status == "saturated" and "saturated" in top.reason
    assert any("62,336 excluded: saturated" in r for r in cal.qc.reasons)
    assert cal.curve.n_points == 3
    for p in cal.fitted:
        assert cal.to_abc(p.fluorescence) == pytest.approx(p.bead_value, rel=0.02)


@pytest.mark.parametrize("values", [RAINBOW6, RAINBOW8])
def test_multi_level_kits(values):
    cal = calibrate(values, slope=1.0, intercept=0.3, cv=0.04)
    assert cal.qc.status == "pass", cal.qc.reasons
    assert cal.populations[0].status == "blank"
    assert cal.curve.n_points == len(values) - 1
    for p in cal.fitted:
        assert cal.to_abc(10 ** (np.log10(p.bead_value) - 0.3)) == pytest.approx(p.bead_value, rel=0.02)


def test_eight_level_kit_with_a_missing_middle_level():
    cal = calibrate(RAINBOW8, slope=1.0, intercept=0.3, cv=0.04, missing=(6588.0,))
    assert cal.missing_levels == (6588.0,)
    for p in cal.fitted:
        assert p.fluorescence == pytest.approx(10 ** (np.log10(p.bead_value) - 0.3), rel=0.02)


def test_unequal_counts():
    cal = calibrate(QUANTIBRITE, counts=[9000, 600, 3000, 300], seed=7)
    assert cal.qc.status == "pass", cal.qc.reasons
    assert [p.events for p in cal.populations] == pytest.approx([9000, 600, 3000, 300], rel=0.1)


def test_few_events_and_wide_peaks_go_to_review():
    cal = calibrate(QUANTIBRITE, counts=[3000, 3000, 3000, 120], cv=0.2, seed=5)
    assert cal.qc.status == "review"
    assert any("robust CV" in r for r in cal.qc.reasons)
    assert any("only" in r and "events" in r for r in cal.qc.reasons)


def test_qc_thresholds_are_configurable():
    fl, scatter = bead_tube(QUANTIBRITE, slope=1.3)
    cal = calibrate_beads(fl, QUANTIBRITE, channel_range=(0.0, TOP), scatter=scatter)
    assert cal.qc.status == "fail" and any("slope" in r for r in cal.qc.reasons)
    lenient = calibrate_beads(fl, QUANTIBRITE, channel_range=(0.0, TOP), scatter=scatter,
                              qc_config=CalibrationQCConfig(slope_max=1.4))
    assert lenient.qc.status == "pass"


def test_abc_interval_combines_fit_and_cell_uncertainty():
    fl, scatter = bead_tube(QUANTIBRITE, cv=0.08, seed=11)
    cal = calibrate_beads(fl, QUANTIBRITE, channel_range=(0.0, TOP), scatter=scatter)
    f = true_f(8000.0)
    low, high = cal.abc_interval(f)
    assert low < cal.to_abc(f) < high
    assert low < 8000.0 * 1.02 and high > 8000.0 * 0.98
    wide_low, wide_high = cal.abc_interval(f, f_se_log=0.01)
    assert wide_high / wide_low > high / low
    centre = cal.abc_interval(10 ** np.mean(np.log10([p.fluorescence for p in cal.fitted])))
    edge = cal.abc_interval(cal.curve.f_min)
    assert centre[1] / centre[0] < edge[1] / edge[0]
    assert cal.in_range(f) and not cal.in_range(cal.curve.f_max * 2)


def test_fit_curve_recovers_line_and_covariance():
    rng = np.random.default_rng(0)
    x = np.linspace(2.0, 4.5, 6)
    y = 0.95 * x + 0.6 + rng.normal(0.0, 0.01, x.size)
    curve = fit_curve(10 ** x, 10 ** y)
    assert curve.slope == pytest.approx(0.95, abs=0.03)
    assert curve.intercept == pytest.approx(0.6, abs=0.1)
    se_slope = np.sqrt(curve.covariance[0][0])
    assert 0.001 < se_slope < 0.02
    assert curve.covariance[0][1] < 0           # slope and intercept anti-correlated for x > 0


def test_population_statistic_and_spread():
    rng = np.random.default_rng(2)
    values = 1000.0 * np.exp(rng.normal(0.0, 0.1, 50_000))
    assert population_statistic(values, "median") == pytest.approx(1000.0, rel=0.005)
    assert population_statistic(values, "geometric_mean") == pytest.approx(1000.0, rel=0.005)
    assert population_statistic(np.array([-5.0, 1.0, 3.0]), "median") == pytest.approx(1.0)
    assert population_statistic(np.array([-5.0, 10.0, 1000.0]), "geometric_mean") == pytest.approx(100.0)
    assert robust_cv(values) == pytest.approx(0.1, rel=0.05)
    se = log_statistic_se(values, "median")   # Maritz-Jarrett: the asymptotic lognormal value
    assert se == pytest.approx(np.sqrt(np.pi / 2) * 0.1 / np.log(10) / np.sqrt(values.size), rel=0.05)
    with pytest.raises(ValueError):
        population_statistic(np.array([]), "median")
    with pytest.raises(ValueError):
        population_statistic(values, "mean")


def test_robust_sds_recover_a_normal_sd_and_ignore_outliers():
    x = np.random.default_rng(5).normal(10.0, 2.0, 20_000)
    x[:500] = 1e6                                              # 2.5 % gross outliers
    assert mad_sd(x) == pytest.approx(2.0, rel=0.05)
    assert percentile_sd(x) == pytest.approx(2.0, rel=0.06)
    assert mad_sd(np.array([1.0, 2.0, 4.0]), center=0.0) == pytest.approx(1.4826 * 2.0)


def test_geometric_mean_statistic_end_to_end():
    fl, scatter = bead_tube(QUANTIBRITE, seed=4)
    cal = calibrate_beads(fl, QUANTIBRITE, channel_range=(0.0, TOP), scatter=scatter, statistic="geometric_mean")
    assert cal.statistic == "geometric_mean" and cal.qc.status == "pass"
    for p in cal.populations:
        assert p.fluorescence == pytest.approx(true_f(p.bead_value), rel=0.02)


def test_assignment_uses_spacing_not_order():
    logs = [np.log10(true_f(v)) for v in (474.0, 23843.0, 62336.0)]
    result = assign_levels(logs, QUANTIBRITE)
    assert result.levels == (0, 2, 3)
    assert result.runner_up > result.score


def test_bad_bead_values_raise():
    fl, scatter = bead_tube(QUANTIBRITE)
    with pytest.raises(ValueError):
        calibrate_beads(fl, (474.0, 300.0, 23843.0), channel_range=(0.0, TOP))
    with pytest.raises(ValueError):
        calibrate_beads(fl, (0.0, 0.0, 23843.0), channel_range=(0.0, TOP))


# Two-channel rainbow tube on a 4-decade log amplifier (as FlowCal's FACScan bead files):
# log10 centre and SD of each level (blank first) in the measured channel, where the blank
# and the two dimmest levels overlap, and in a second channel, where they are far apart.
LOG_RANGE = (1.0, 1e4)
MEASURED = ((2.12, 0.08), (2.22, 0.07), (2.36, 0.065), (2.72, 0.04), (3.06, 0.03), (3.44, 0.02), (3.80, 0.015))
SECOND = ((1.0, 0.2), (2.0, 0.05), (2.43, 0.03), (2.91, 0.02), (3.30, 0.015), (3.77, 0.014), (3.95, 0.01))
RAINBOW7 = RAINBOW8[:7]


def rainbow_tube(*, missing=(), n=3000, seed=2):
    """(measured channel, second channel, level of each event) of a two-channel rainbow tube."""
    rng = np.random.default_rng(seed)
    parts = [(10 ** rng.normal(m0, s0, n), 10 ** rng.normal(m1, s1, n), np.full(n, level))
             for level, ((m0, s0), (m1, s1)) in enumerate(zip(MEASURED, SECOND)) if level not in missing]
    fl, second, levels = (np.concatenate(x) for x in zip(*parts))
    return np.clip(fl, *LOG_RANGE), np.clip(second, *LOG_RANGE), levels


def _joint(fl, second):
    return calibrate_beads(fl, RAINBOW7, channel_range=LOG_RANGE,
                           clustering=ClusteringChannels(second[:, None], (LOG_RANGE,), ("FL3",)))


def test_clustering_channel_separates_levels_overlapping_in_the_measured_one():
    fl, second, levels = rainbow_tube()
    truth = [np.median(fl[levels == k]) for k in range(len(RAINBOW7))]
    single = calibrate_beads(fl, RAINBOW7, channel_range=LOG_RANGE)
    assert any(p.fluorescence is None or abs(p.fluorescence / t - 1) > 0.02
               for p, t in zip(single.populations[:3], truth))
    joint = _joint(fl, second)
    assert joint.clustering_channels == ("FL3",)
    assert joint.populations[0].status == "blank" and not joint.missing_levels
    for p, t in zip(joint.populations, truth):
        assert p.fluorescence == pytest.approx(t, rel=0.02)
        assert p.events == pytest.approx(3000, rel=0.03)


def test_clustering_keeps_a_missing_level_missing():
    fl, second, levels = rainbow_tube(missing=(4,), seed=4)
    cal = _joint(fl, second)
    assert cal.missing_levels == (RAINBOW7[4],)
    for p in cal.populations:
        if p.status != "missing":
            assert p.fluorescence == pytest.approx(np.median(fl[levels == p.level]), rel=0.02)


def test_joint_search_splits_a_pair_blurred_by_a_noisy_channel():
    from calibration.joint_peaks import find_joint_peaks
    rng = np.random.default_rng(1)
    centres = (((2.0, 0.04), (1.0, 0.3)), ((2.3, 0.04), (1.0, 0.3)), ((2.8, 0.03), (2.5, 0.03)),
               ((3.3, 0.03), (3.0, 0.03)))    # the two dimmest differ only in channel 0
    t = np.concatenate([np.column_stack([rng.normal(m0, s0, 3000), rng.normal(m1, s1, 3000)])
                        for (m0, s0), (m1, s1) in centres])
    search = find_joint_peaks(t, max_peaks=4)
    assert [p.log_center for p in search.peaks] == pytest.approx([2.0, 2.3, 2.8, 3.3], abs=0.01)
    assert [p.events for p in search.peaks] == pytest.approx([3000] * 4, rel=0.02)


def test_clustering_channels_must_match_the_events():
    fl, second, _ = rainbow_tube()
    with pytest.raises(ValueError):
        ClusteringChannels(second, (LOG_RANGE,))
    with pytest.raises(ValueError):
        calibrate_beads(fl, RAINBOW7, channel_range=LOG_RANGE,
                        clustering=ClusteringChannels(second[:-1, None], (LOG_RANGE,)))
