"""Acquisition stability along Time (or event order) on generated tubes with known faults."""

from __future__ import annotations

import numpy as np
import pytest

from data_samples import populations
from data_samples.generate import CALIBUR, CANTO, LYRIC, Drift, Interruption, make_patient_tube
from gating.compensation import compensate
from gating.stability import StabilityConfig, check_stability
from gating.strategy import gate_monocytes

FLAVOURS = {"CANTO": CANTO, "CALIBUR": CALIBUR, "LYRIC": LYRIC}


def _gate(instrument: str, seed: int, **options):
    tube = make_patient_tube(FLAVOURS[instrument], abc=6000.0, seed=seed, **options)
    names = [p.name for p in tube.parameters]
    events = tube.decoded()
    if tube.spillover is not None:
        events = compensate(events, names, *tube.spillover)
    if "time" in tube.roles:
        events[:, names.index(tube.roles["time"])] *= 0.01          # seconds, as read_fcs gives them
    result = gate_monocytes(events, names, tube.roles, seed=0)
    return tube, events[:, names.index(tube.roles["pe"])], result


def _undisturbed_pe_median(instrument: str, seed: int) -> float:
    """The same particles and noise draws without the fault (faults draw no random numbers)."""
    return make_patient_tube(FLAVOURS[instrument], abc=6000.0, seed=seed).truth["monocyte_pe_median"]


@pytest.mark.parametrize("instrument", FLAVOURS)
def test_clean_acquisition_keeps_everything(instrument: str) -> None:
    _, _, result = _gate(instrument, 1)
    st = result.stability
    assert st.status == "pass" and st.excluded_share == 0.0 and st.kept == ((float("-inf"), float("inf")),)
    assert result.counts["stable"] == result.counts["events"]
    assert st.axis == ("event" if instrument == "CALIBUR" else "time")
    assert (st.rate is None) == (instrument == "CALIBUR")
    assert not any(st.pe.flagged) and all(0.9 < v < 1.1 for v in st.pe.value)
    assert list(st.pe.position) == sorted(st.pe.position) and len(st.pe.position) >= 10
    if instrument == "CALIBUR":
        assert any("no Time channel" in n for n in result.notes)
    assert result.qc.status == "pass"


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("seed", [2, 3])
def test_drift_is_excluded_and_reviewed(instrument: str, seed: int) -> None:
    """PE (and CD14) fall 40 % over the last 40 % of the run: the fading end is excluded, the
    result comes from the stable part, and QC says so (review), never a silent pass."""
    tube, pe, result = _gate(instrument, seed, drift=Drift(start=0.6, drop=0.4))
    st = result.stability
    assert result.qc.status == "review"
    assert any("drifts" in r and "excluded" in r for r in result.qc.reasons)
    assert 0.2 <= st.excluded_share <= 0.45
    assert len(st.kept) == 1 and st.kept[0][0] == float("-inf")
    assert st.pe.flagged[-1] and not st.pe.flagged[0]
    undisturbed = _undisturbed_pe_median(instrument, seed)
    assert np.median(pe[result.monocytes]) == pytest.approx(undisturbed, rel=0.03)
    # without the check the drifting end would have pulled the median down
    assert tube.truth["monocyte_pe_median"] < 0.95 * undisturbed


@pytest.mark.parametrize("instrument", ["CANTO", "LYRIC"])
def test_interruption_is_reported_and_its_burst_excluded(instrument: str) -> None:
    _, pe, result = _gate(instrument, 4, interruption=Interruption(at=0.5, gap_seconds=20.0))
    st = result.stability
    assert any("paused 20.0 s" in f for f in st.findings)
    assert 0.0 < st.excluded_share < StabilityConfig().note_below
    assert st.rate is not None and any(st.rate.flagged) and max(st.rate.value) > 3.0
    assert result.qc.status == "pass" and any("paused" in n for n in result.notes)
    assert any("excluded" in n and "flow rate" in n for n in result.notes)
    assert np.median(pe[result.monocytes]) == pytest.approx(_undisturbed_pe_median(instrument, 4), rel=0.015)


def test_bimodal_hladr_is_not_mistaken_for_drift() -> None:
    _, _, result = _gate("CANTO", 5, bimodal=(0.45, 21000.0))
    assert result.stability.excluded_share == 0.0 and result.qc.status == "pass"


def _synthetic(n: int = 40000, seed: int = 0):
    rng = np.random.default_rng(seed)
    time = np.cumsum(rng.exponential(1 / 1000.0, n))
    monocytes = rng.random(n) < 0.1
    pe = 5000.0 * np.exp(0.4 * rng.standard_normal(n))
    cd14 = 20000.0 * np.exp(0.3 * rng.standard_normal(n))
    return time, pe, cd14, monocytes


def test_drift_throughout_the_run_is_not_a_silent_pass() -> None:
    time, pe, cd14, monocytes = _synthetic()
    pe = pe * np.linspace(1.0, 0.7, pe.size)                   # fades all along: no stable stretch
    st = check_stability(time, pe, cd14, monocytes, time_channel="Time")
    assert st.status in ("review", "fail") and any("drift" in f for f in st.findings)


def test_time_that_goes_back_falls_back_to_event_order() -> None:
    time, pe, cd14, monocytes = _synthetic()
    time[20000:] -= time[20000]                                  # a clock reset half-way
    st = check_stability(time, pe, cd14, monocytes, time_channel="Time")
    assert st.axis == "event" and st.channel is None and st.rate is None
    assert any("not non-decreasing" in f for f in st.findings) and st.status == "pass"


def test_a_step_keeps_the_level_most_of_the_run_had_and_asks_for_review() -> None:
    time, pe, cd14, monocytes = _synthetic()
    pe[24000:] *= 0.6                                            # a step at 60 % of the run
    st = check_stability(time, pe, cd14, monocytes, time_channel="Time")
    assert st.status == "review" and st.excluded_share == pytest.approx(0.4, abs=0.03)
    assert st.kept[0][0] == float("-inf") and st.kept[-1][1] < time[24000]


def test_mostly_unstable_run_fails() -> None:
    time, pe, cd14, monocytes = _synthetic()
    pe[12000:24000] *= 0.6                                       # three levels: none holds half the run
    pe[24000:] *= 0.8
    st = check_stability(time, pe, cd14, monocytes, time_channel="Time")
    assert st.status == "fail" and st.excluded_share > 0.5
    assert any("less than half" in f for f in st.findings)


def test_kept_intervals_reproduce_the_mask() -> None:
    time, pe, cd14, monocytes = _synthetic()
    time[30000:] += 15.0                                          # a pause
    time[30000:30600] = time[30000] + np.cumsum(np.full(600, 1 / 8000.0))   # then a burst
    time[30600:] += time[30599] - time[30600] + 1e-3
    st = check_stability(time, pe, cd14, monocytes, time_channel="Time")
    keep = st.mask(time)
    assert 0.0 < 1.0 - keep.mean() == pytest.approx(st.excluded_share)
    assert not keep[30100:30500].any() and keep[:25000].all()


def test_monocyte_truth_is_unchanged_by_a_fault() -> None:
    calm = make_patient_tube(CANTO, abc=6000.0, seed=6)
    drifting = make_patient_tube(CANTO, abc=6000.0, seed=6, drift=Drift())
    assert np.array_equal(calm.particles.pe_molecules, drifting.particles.pe_molecules)
    assert calm.truth["abc"] == drifting.truth["abc"]
    mono = np.isin(calm.particles.label, populations.MONOCYTE_LABELS)
    assert drifting.truth["faults"][0]["kind"] == "drift" and mono.sum() == calm.truth["n_monocytes"]
