"""Automatic monocyte gating on synthetic lysed whole blood with known membership."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from gating.result import GatingQCConfig
from gating.statistic import monocyte_pe_statistic
from gating.strategy import gate_monocytes
from gating.template import load_template_gate

LABELS = ("debris", "lymphocytes", "monocytes", "granulocytes", "doublets")


@dataclass(frozen=True)
class Tube:
    events: np.ndarray
    names: tuple[str, ...]
    roles: dict[str, str | None]
    labels: np.ndarray           # index into LABELS

    @property
    def monocytes(self) -> np.ndarray:
        return self.labels == LABELS.index("monocytes")

    def column(self, role: str) -> np.ndarray:
        return self.events[:, self.names.index(self.roles[role])]


def _lognormal(rng: np.random.Generator, centre: float, sd_decades: float, n: int) -> np.ndarray:
    return centre * 10 ** rng.normal(0.0, sd_decades, n)


def make_tube(scale: str = "canto", *, events: int = 40000, monocytes: float = 0.08,
              debris: float = 0.10, doublets: float = 0.04, cd14_dim_fraction: float = 0.0,
              granulocyte_shoulder: float = 0.0, bimodal: bool = False,
              hladr: float = 6000.0, seed: int = 1) -> Tube:
    """Lysed whole blood: lymphocytes CD14-, granulocytes CD14-dim high SSC, monocytes CD14-bright
    intermediate SSC, debris (low FSC) and doublets (area/height raised). Intensities are drawn
    on the 262,144 linear scale; ``scale='calibur'`` re-expresses them as a FACSCalibur would
    (10-bit linear scatter, 10-bit 4-decade log fluorescence decoded to 1..10^4)."""
    rng = np.random.default_rng(seed)
    n_deb, n_dbl, n_mono = int(events * debris), int(events * doublets), int(events * monocytes)
    rest = events - n_deb - n_dbl - n_mono
    n_lym = int(rest * 0.35)
    n_gran = rest - n_lym
    fsc, ssc, cd14, pe = [], [], [], []

    def add(f, s, c, p):
        fsc.append(f); ssc.append(s); cd14.append(c); pe.append(p)

    add(_lognormal(rng, 6000, 0.25, n_deb), _lognormal(rng, 3000, 0.3, n_deb),
        rng.normal(0, 80, n_deb), _lognormal(rng, 100, 0.5, n_deb))
    b_cells = rng.random(n_lym) < 0.15
    add(_lognormal(rng, 45000, 0.05, n_lym), _lognormal(rng, 12000, 0.09, n_lym),
        rng.normal(50, 80, n_lym),
        np.where(b_cells, _lognormal(rng, 15000, 0.2, n_lym), _lognormal(rng, 150, 0.3, n_lym)))
    dim = rng.random(n_mono) < cd14_dim_fraction
    low_dr = bimodal & (rng.random(n_mono) < 0.4)
    add(_lognormal(rng, 80000, 0.05, n_mono),
        np.where(dim, _lognormal(rng, 36000, 0.08, n_mono), _lognormal(rng, 40000, 0.08, n_mono)),
        np.where(dim, _lognormal(rng, 3000, 0.2, n_mono), _lognormal(rng, 25000, 0.15, n_mono)),
        np.where(low_dr, _lognormal(rng, hladr / 6, 0.2, n_mono),
                 _lognormal(rng, hladr, 0.2, n_mono)))
    shoulder = rng.random(n_gran) < granulocyte_shoulder
    add(_lognormal(rng, 95000, 0.05, n_gran),
        np.where(shoulder, _lognormal(rng, 70000, 0.07, n_gran), _lognormal(rng, 120000, 0.06, n_gran)),
        _lognormal(rng, 900, 0.2, n_gran), _lognormal(rng, 200, 0.3, n_gran))
    labels = np.repeat(np.arange(4), [n_deb, n_lym, n_mono, n_gran])
    fsc_a, ssc_a, cd14_v, pe_v = (np.concatenate(v) for v in (fsc, ssc, cd14, pe))
    fsc_h = fsc_a / 1.15 * (1 + rng.normal(0, 0.02, fsc_a.size))
    cells = np.flatnonzero(labels > 0)
    a, b = rng.choice(cells, n_dbl), rng.choice(cells, n_dbl)
    fsc_a = np.concatenate([fsc_a, fsc_a[a] + fsc_a[b]])
    fsc_h = np.concatenate([fsc_h, np.maximum(fsc_h[a], fsc_h[b]) * 1.1])
    ssc_a, cd14_v, pe_v = (np.concatenate([v, v[a] + v[b]]) for v in (ssc_a, cd14_v, pe_v))
    labels = np.concatenate([labels, np.full(n_dbl, 4)])
    cd14_v = cd14_v + rng.normal(0, 60, cd14_v.size)      # detector noise around zero
    order = rng.permutation(labels.size)
    if scale == "canto":
        names = ("FSC-A", "FSC-H", "SSC-A", "PE-A", "PerCP-Cy5-5-A")
        columns = [fsc_a, fsc_h, ssc_a, pe_v, cd14_v]
        columns = [np.clip(c, -111, 262143).astype(np.float32).astype(float) for c in columns]
        roles = {"fsc_a": "FSC-A", "fsc_h": "FSC-H", "ssc_a": "SSC-A", "ssc_h": None,
                 "pe": "PE-A", "cd14": "PerCP-Cy5-5-A"}
    else:
        names = ("FSC-H", "SSC-H", "FL2-H", "FL3-H")

        def linear10(v, full):
            return np.clip(np.round(v / full * 1023), 0, 1023)

        def log4(v):
            ch = np.clip(np.round(256 * np.log10(np.clip(v / 20, 1, 9999))), 0, 1023)
            return 10 ** (4 * ch / 1024)

        columns = [linear10(fsc_h, 200000), linear10(ssc_a, 250000), log4(pe_v), log4(cd14_v)]
        roles = {"fsc_a": None, "fsc_h": "FSC-H", "ssc_a": None, "ssc_h": "SSC-H",
                 "pe": "FL2-H", "cd14": "FL3-H"}
    return Tube(np.column_stack(columns)[order], names, roles, labels[order])


def _scores(tube: Tube, mask: np.ndarray) -> tuple[float, float, float]:
    """Recall, precision (over singlet events: files without FSC-A cannot drop doublets) and
    the relative error of the gated PE median against the true monocytes' PE median."""
    truth, singlets = tube.monocytes, tube.labels != LABELS.index("doublets")
    recall = (mask & truth).sum() / truth.sum()
    precision = (mask & truth).sum() / max((mask & singlets).sum(), 1)
    pe = tube.column("pe")
    return recall, precision, float(np.median(pe[mask]) / np.median(pe[truth]) - 1.0)


CASES = {"plain": {}, "cd14_dim": {"cd14_dim_fraction": 0.3},
         "granulocyte_shoulder": {"granulocyte_shoulder": 0.25}, "bimodal_hladr": {"bimodal": True}}


@pytest.mark.parametrize("scale", ["canto", "calibur"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_monocytes_found_on_both_scales(scale: str, case: str) -> None:
    tube = make_tube(scale, seed=7, **CASES[case])
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    recall, precision, pe_error = _scores(tube, result.monocytes)
    assert recall >= 0.9 and precision >= 0.9
    assert abs(pe_error) <= 0.02
    assert result.qc.status == "pass"
    assert result.counts["monocytes"] == int(result.monocytes.sum())


def test_cd14_dim_monocytes_kept() -> None:
    tube = make_tube("canto", seed=3, cd14_dim_fraction=0.3)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    dim_monocytes = tube.monocytes & (tube.column("cd14") < 8000)
    assert (result.monocytes & dim_monocytes).sum() / dim_monocytes.sum() >= 0.9


def test_cd14_dim_granulocytes_left_out() -> None:
    tube = make_tube("calibur", seed=3, granulocyte_shoulder=0.3)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    granulocytes = tube.labels == LABELS.index("granulocytes")
    assert (result.monocytes & granulocytes).sum() / granulocytes.sum() <= 0.005


def test_gate_ignores_hladr() -> None:
    """HLA-DR never moves the gate: the polygons and both CD14-dim alternatives are the same
    with PE shuffled (PE is read only to choose between the alternatives and for stability)."""
    tube = make_tube("canto", seed=5, bimodal=True)
    first = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    shuffled = tube.events.copy()
    pe = tube.names.index("PE-A")
    shuffled[:, pe] = np.random.default_rng(0).permutation(shuffled[:, pe])
    second = gate_monocytes(shuffled, tube.names, tube.roles, seed=0)
    assert first.as_dict()["gate"]["polygons"] == second.as_dict()["gate"]["polygons"]
    for name in ("cd14_bright", "with_cd14_dim"):
        assert np.array_equal(first.alternatives[name], second.alternatives[name])
    assert np.array_equal(first.monocytes, second.monocytes)


def test_seeded_gate_is_reproducible() -> None:
    tube = make_tube("calibur", seed=2)
    a = gate_monocytes(tube.events, tube.names, tube.roles, seed=11)
    b = gate_monocytes(tube.events, tube.names, tube.roles, seed=11)
    assert np.array_equal(a.monocytes, b.monocytes) and a.as_dict() == b.as_dict()


@pytest.mark.parametrize("fraction, status", [(300 / 40000, "fail"), (1200 / 40000, "review")])
def test_few_monocytes_review_or_fail(fraction: float, status: str) -> None:
    tube = make_tube("canto", seed=4, monocytes=fraction)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    recall, precision, _ = _scores(tube, result.monocytes)
    assert recall >= 0.9 and precision >= 0.9
    assert result.qc.status == status
    assert any("monocytes" in r for r in result.qc.reasons)


def test_thresholds_come_from_config() -> None:
    tube = make_tube("canto", seed=4, monocytes=1200 / 40000)
    config = GatingQCConfig(monocytes_review_below=1000, monocytes_fail_below=100)
    assert gate_monocytes(tube.events, tube.names, tube.roles, config).qc.status == "pass"


def test_debris_and_doublets_removed() -> None:
    tube = make_tube("canto", seed=8, debris=0.2, doublets=0.08)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    debris = tube.labels == LABELS.index("debris")
    doublets = tube.labels == LABELS.index("doublets")
    assert result.masks["cells"][debris].mean() <= 0.05
    assert result.masks["cells"][~debris].mean() >= 0.97
    assert result.masks["singlets"][doublets].mean() <= 0.2
    assert result.masks["singlets"][~debris & ~doublets].mean() >= 0.97
    assert result.debris.valley_found and result.doublets is not None
    assert result.doublets.ratio_low < 1.15 < result.doublets.ratio_high


def test_no_fsc_area_skips_doublets_with_a_note() -> None:
    tube = make_tube("calibur", seed=8)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    assert result.doublets is None
    assert np.array_equal(result.masks["singlets"], result.masks["cells"])
    assert any("doublets not excluded" in n for n in result.notes)


def test_no_monocyte_cluster_fails() -> None:
    tube = make_tube("canto", seed=9, monocytes=0.0)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    assert result.qc.status == "fail"
    assert result.counts["monocytes"] < 100


def test_missing_cd14_channel_is_refused() -> None:
    tube = make_tube("canto", seed=1)
    roles = dict(tube.roles, cd14=None)
    with pytest.raises(ValueError, match="cd14"):
        gate_monocytes(tube.events, tube.names, roles)


def test_result_as_dict_holds_geometry() -> None:
    tube = make_tube("canto", seed=1)
    record = gate_monocytes(tube.events, tube.names, tube.roles).as_dict()
    roles = [p["role"] for p in record["gate"]["populations"]]
    assert "monocytes" in roles and "lymphocytes" in roles and "granulocytes" in roles
    assert record["debris"]["threshold"] > 0 and 0.5 < record["separation"] <= 1.0
    assert record["gate"]["polygons"][0]["name"] == "monocytes_cd14_bright"


# --- lab template in place of the automatic gate ------------------------------------------

_MONOCYTE_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="Monocytes">
    <gating:dimension gating:min="8000" gating:compensation-ref="FCS">
      <data-type:fcs-dimension data-type:name="PerCP-Cy5-5-A" />
    </gating:dimension>
    <gating:dimension gating:min="20000" gating:max="75000" gating:compensation-ref="uncompensated">
      <data-type:fcs-dimension data-type:name="SSC-A" />
    </gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""


def test_template_replaces_automatic_gate(tmp_path) -> None:
    path = tmp_path / "lab.xml"
    path.write_text(_MONOCYTE_TEMPLATE)
    template = load_template_gate(path, "Monocytes")
    tube = make_tube("canto", seed=6)
    result = gate_monocytes(tube.events, tube.names, tube.roles, template=template)
    truth = tube.monocytes
    assert (result.monocytes & truth).sum() / truth.sum() >= 0.9
    assert (result.monocytes & truth).sum() / result.monocytes.sum() >= 0.9
    assert result.as_dict()["gate"]["method"] == "template"
    assert result.separation is None and result.qc.status == "pass"


# --- PE statistic ------------------------------------------------------------------------------

@pytest.mark.parametrize("bimodal", [False, True])
def test_median_se_matches_repeated_sampling(bimodal: bool) -> None:
    rng = np.random.default_rng(0)

    def draw(n: int) -> np.ndarray:
        low = rng.random(n) < (0.4 if bimodal else 0.0)
        return np.where(low, 1000.0, 6000.0) * 10 ** rng.normal(0, 0.2, n)

    logs, ses = [], []
    for _ in range(150):
        value, se = monocyte_pe_statistic(draw(3000))
        logs.append(np.log10(value))
        ses.append(se)
    assert np.mean(ses) == pytest.approx(np.std(logs), rel=0.2)


def test_geometric_mean_statistic() -> None:
    values = 5000.0 * 10 ** np.random.default_rng(1).normal(0, 0.2, 4000)
    value, se = monocyte_pe_statistic(values, "geometric_mean")
    assert value == pytest.approx(5000.0, rel=0.02)
    assert se == pytest.approx(0.2 / np.sqrt(4000), rel=0.1)


@pytest.mark.parametrize("scale", ["canto", "calibur"])
def test_separable_dim_monocytes_and_shoulder_pass(scale: str) -> None:
    """Here the shoulder sits well above the monocytes' SSC: both are resolved, and the
    CD14-dim zone check does not raise a false review."""
    tube = make_tube(scale, seed=7, cd14_dim_fraction=0.3, granulocyte_shoulder=0.25)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    recall, precision, pe_error = _scores(tube, result.monocytes)
    assert recall >= 0.95 and precision >= 0.95 and abs(pe_error) <= 0.02
    assert result.qc.status == "pass"


def test_cd14_dim_review_threshold_comes_from_config() -> None:
    tube = make_tube("canto", seed=3, cd14_dim_fraction=0.3)
    result = gate_monocytes(tube.events, tube.names, tube.roles, seed=0)
    assert result.qc.status == "pass" and result.cd14_dim.kept
    strict = GatingQCConfig(dim_shift_review_above=abs(result.cd14_dim.pe_median_shift) / 2)
    result = gate_monocytes(tube.events, tube.names, tube.roles, strict, seed=0)
    assert result.qc.status == "review" and result.cd14_dim.kept
    assert any("CD14-dim" in r and "without them" in r for r in result.qc.reasons)
