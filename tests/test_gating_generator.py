"""The monocyte gate on the project generator's tubes, against what the generator drew.

Three instrument flavours (CANTO float + $SPILLOVER, CALIBUR 10-bit log without FSC-A,
LYRIC big-endian floats with a reordered $SPILLOVER), clean tubes and what septic blood
brings (data_samples.generate.make_patient_tube). The PE median of the gated monocytes is
compared with the median of the generated monocytes as written (``monocyte_pe_median``,
what a perfect gate would see), so the error is the gate's alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from data_samples import populations
from data_samples.generate import CALIBUR, CANTO, LYRIC, make_patient_tube
from gating.compensation import compensate
from gating.strategy import gate_monocytes

FLAVOURS = {"CANTO": CANTO, "CALIBUR": CALIBUR, "LYRIC": LYRIC}


def _gate(instrument: str, seed: int, **options):
    options.setdefault("abc", 6000.0)
    tube = make_patient_tube(FLAVOURS[instrument], seed=seed, **options)
    names = [p.name for p in tube.parameters]
    events = tube.decoded()
    if tube.spillover is not None:
        events = compensate(events, names, *tube.spillover)
    result = gate_monocytes(events, names, tube.roles, seed=0)
    labels = tube.particles.label
    truth = np.isin(labels, populations.MONOCYTE_LABELS)
    return tube, events[:, names.index(tube.roles["pe"])], result, truth, labels


def _scores(pe, result, truth, labels, tube):
    mask = result.monocytes
    recall = (mask & truth).sum() / truth.sum()
    precision = (mask & truth).sum() / (mask & (labels != "doublet")).sum()
    error = np.median(pe[mask]) / tube.truth["monocyte_pe_median"] - 1.0
    return recall, precision, error


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_tubes_pass_without_review(instrument: str, seed: int) -> None:
    tube, pe, result, truth, labels = _gate(instrument, seed, abc=[2500.0, 7800.0, 21000.0][seed - 1],
                                            monocyte_fraction=[0.06, 0.09, 0.13][seed - 1])
    recall, precision, error = _scores(pe, result, truth, labels, tube)
    assert recall >= 0.97 and precision >= 0.97
    assert abs(error) <= 0.02
    assert result.qc.status == "pass", result.qc.reasons
    assert result.counts["monocytes"] == int(result.monocytes.sum())


MESSY = {
    "left_shift": {"immature_granulocyte_fraction": 0.20},
    "left_shift_intermediate_cd14": {"immature_granulocyte_fraction": 0.15, "immature_granulocyte_cd14": 15000.0},
    "eosinophils": {"eosinophil_fraction": 0.08},
    "lyse_no_wash": {"lyse_no_wash": 0.35},
    "cd14_dim_5": {"cd14_dim_fraction": 0.05},
    "cd14_dim_30": {"cd14_dim_fraction": 0.30},
    "cd14_dim_30_left_shift": {"cd14_dim_fraction": 0.30, "immature_granulocyte_fraction": 0.15},
    "septic": {"immature_granulocyte_fraction": 0.12, "eosinophil_fraction": 0.04, "lyse_no_wash": 0.25,
               "cd14_dim_fraction": 0.15},
    "bimodal_hladr": {"bimodal": (0.45, 21000.0), "abc": 3500.0},
}


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("case", MESSY)
def test_septic_blood_reads_right_without_review(instrument: str, case: str) -> None:
    """The monocytes are the CD14-bright population at their own scatter: the denser, dimmer
    immature granulocytes never take the gate, and nothing sound asks for a review."""
    tube, pe, result, truth, labels = _gate(instrument, 4, **MESSY[case])
    recall, precision, error = _scores(pe, result, truth, labels, tube)
    bright = labels == "monocyte"
    assert (result.monocytes & bright).sum() / bright.sum() >= 0.95
    assert precision >= 0.95
    assert (result.monocytes & (labels == "immature_granulocyte")).sum() <= 0.05 * result.monocytes.sum()
    assert abs(error) <= 0.025
    assert result.qc.status == "pass", result.qc.reasons


@pytest.mark.parametrize("instrument", FLAVOURS)
def test_cd14_dim_monocytes_gated_both_ways(instrument: str) -> None:
    """A CD14-dim subset at the monocytes' scatter is kept; the other way is carried too."""
    tube, pe, result, truth, labels = _gate(instrument, 5, cd14_dim_fraction=0.3)
    dim = labels == "monocyte_cd14dim"
    assert result.cd14_dim is not None and result.cd14_dim.kept
    assert (result.monocytes & dim).sum() / dim.sum() >= 0.9
    bright, with_dim = result.alternatives["cd14_bright"], result.alternatives["with_cd14_dim"]
    assert np.array_equal(with_dim, result.monocytes) and (bright & dim).sum() <= 0.05 * dim.sum()
    assert abs(result.cd14_dim.pe_median_shift) < 0.02
    assert result.cd14_dim.share == pytest.approx(dim.sum() / (labels == "monocyte").sum(), rel=0.1)
    assert result.qc.status == "pass"


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("left_shift", [0.0, 0.15])
def test_cd14_dim_monocytes_of_another_hladr_ask_for_review(instrument: str, left_shift: float) -> None:
    """The other choice for the CD14-dim monocytes moves the AB/C here: review, saying by how
    much, with both gates in the result. Alone at the monocytes' scatter they are a population
    of their own and kept (the value matches the truth, which counts them); merged into a left
    shift they are left out (the CD14-bright value, with the review)."""
    tube, pe, result, truth, labels = _gate(instrument, 6, cd14_dim_fraction=0.3, cd14_dim_hladr=0.4,
                                            immature_granulocyte_fraction=left_shift)
    assert result.qc.status == "review"
    assert any("CD14-dim" in r and "would be" in r for r in result.qc.reasons)
    shift = result.cd14_dim.pe_median_shift
    assert shift < -0.05
    with_dim = np.median(pe[result.alternatives["with_cd14_dim"]])
    without = np.median(pe[result.alternatives["cd14_bright"]])
    assert with_dim / without - 1.0 == pytest.approx(shift, abs=1e-9)
    assert tube.truth["abc"] < tube.truth["abc_cd14_bright"]
    assert result.cd14_dim.kept == (left_shift == 0.0)
    if result.cd14_dim.kept:
        assert np.median(pe[result.monocytes]) == pytest.approx(tube.truth["monocyte_pe_median"], rel=0.03)


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("fraction, status", [(0.035, "review"), (0.009, "fail")])
def test_monocytopenia_review_then_fail(instrument: str, fraction: float, status: str) -> None:
    tube, pe, result, truth, labels = _gate(instrument, 7, monocyte_fraction=fraction,
                                            immature_granulocyte_fraction=0.1)
    recall, precision, error = _scores(pe, result, truth, labels, tube)
    assert recall >= 0.95 and precision >= 0.9 and abs(error) <= 0.05
    assert result.qc.status == status
    assert any("monocytes (fewer than" in r for r in result.qc.reasons)


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("ig_cd14", [9000.0, 15000.0])
def test_no_monocytes_is_a_fail_never_another_cluster(instrument: str, ig_cd14: float) -> None:
    _, _, result, _, labels = _gate(instrument, 8, monocyte_fraction=0.0, immature_granulocyte_fraction=0.2,
                                    immature_granulocyte_cd14=ig_cd14)
    assert result.qc.status == "fail"
    assert result.counts["monocytes"] < 100
    assert any("monocytes not found" in r for r in result.qc.reasons)


@pytest.mark.parametrize("instrument", FLAVOURS)
@pytest.mark.parametrize("ig_fraction", [0.05, 0.2])
def test_unresolvable_monocytes_never_pass(instrument: str, ig_fraction: float) -> None:
    """Immature granulocytes at the monocytes' own SSC with half their CD14: no density valley,
    so the gate cannot tell them apart; the PE median then depends on the CD14 cut."""
    _, pe, result, truth, labels = _gate(instrument, 9, monocyte_cd14=30000.0,
                                         immature_granulocyte_fraction=ig_fraction,
                                         immature_granulocyte_cd14=12000.0, immature_granulocyte_ssc=0.2)
    assert result.qc.status in ("review", "fail")
    assert any("not resolved" in r for r in result.qc.reasons)
    assert result.core_shift is not None and result.core_shift > 0.05


def test_poor_valley_is_reviewed_and_thresholds_come_from_config() -> None:
    from gating.result import GatingQCConfig
    tube = make_patient_tube(CANTO, abc=6000.0, seed=10, immature_granulocyte_fraction=0.2,
                             immature_granulocyte_cd14=15000.0)
    names = [p.name for p in tube.parameters]
    events = compensate(tube.decoded(), names, *tube.spillover)
    result = gate_monocytes(events, names, tube.roles)
    assert 0.0 < result.separation < 1.0
    strict = gate_monocytes(events, names, tube.roles, GatingQCConfig(valley_review_above=1.0 - result.separation - 0.01))
    assert strict.qc.status == "review" and any("poorly separated" in r for r in strict.qc.reasons)
    assert result.qc.status == "pass"


def test_gate_is_a_polygon_with_the_populations_named() -> None:
    _, _, result, _, _ = _gate("LYRIC", 11, immature_granulocyte_fraction=0.1)
    record = result.as_dict()
    gate = record["gate"]
    assert gate["method"] == "automatic" and gate["transform"] == "asinh"
    assert [p["name"] for p in gate["polygons"]] == ["monocytes_cd14_bright"]
    assert len(gate["polygons"][0]["vertices"]) >= 32
    roles = {p["role"] for p in gate["populations"]}
    assert {"monocytes", "lymphocytes", "granulocytes"} <= roles
    assert record["counts"]["stable"] == record["counts"]["events"]
    assert record["stability"]["axis"] == "time" and record["cd14_dim"]["kept"] is False


@pytest.mark.parametrize("options", [{}, {"cd14_dim_fraction": 0.3}, {"monocyte_fraction": 0.0}])
def test_record_is_strict_json(options: dict) -> None:
    """The gating record goes to the results store as JSON: no NaN, no Infinity (open ends of
    the stable Time range are null)."""
    import json

    from data_samples.generate import Drift
    _, _, result, _, _ = _gate("CANTO", 12, drift=Drift(), **options)
    text = json.dumps(result.as_dict(), allow_nan=False)
    assert '"stability"' in text
