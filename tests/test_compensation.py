"""Spillover compensation through FlowKit: real file with FlowKit's own result as the oracle,
and synthetic data with a known spill."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gating.compensation import compensate


@pytest.fixture(scope="module")
def comp_sample(real_fcs):
    import flowkit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the file's data offset is off by one
        return flowkit.Sample(str(real_fcs / "FlowKit" / "test_comp_example.fcs"),
                              ignore_offset_error=True)


def _spill_keyword(sample) -> tuple[list[str], np.ndarray]:
    fields = sample.metadata["spill"].split(",")
    n = int(fields[0])
    return fields[1:n + 1], np.array(fields[n + 1:], dtype=float).reshape(n, n)


def test_file_spill_matches_flowkit(comp_sample) -> None:
    channels, matrix = _spill_keyword(comp_sample)
    comp_sample.apply_compensation(comp_sample.metadata["spill"])
    expected = comp_sample.get_events(source="comp")
    raw = comp_sample.get_events(source="raw")
    ours = compensate(raw, comp_sample.pnn_labels, channels, matrix)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-6)


def test_reordered_matrix_matches_flowkit(comp_sample) -> None:
    import flowkit

    channels, _ = _spill_keyword(comp_sample)
    rng = np.random.default_rng(3)
    n = len(channels)
    spill = np.eye(n) + np.triu(rng.uniform(0, 0.2, (n, n)), 1) + np.tril(rng.uniform(0, 0.05, (n, n)), -1)
    order = rng.permutation(n)                   # matrix order differs from the file's
    detectors = [channels[i] for i in order]
    matrix = spill[np.ix_(order, order)]
    comp_sample.apply_compensation(flowkit.Matrix(matrix, detectors))
    expected = comp_sample.get_events(source="comp")
    raw = comp_sample.get_events(source="raw")
    ours = compensate(raw, comp_sample.pnn_labels, detectors, matrix)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-6)
    assert not np.allclose(ours, raw)
    scatter = [comp_sample.pnn_labels.index(c) for c in ("FSC-A", "SSC-A", "Time")]
    np.testing.assert_array_equal(ours[:, scatter], raw[:, scatter])


def test_known_spill_recovered() -> None:
    rng = np.random.default_rng(0)
    true = np.column_stack([rng.uniform(0, 1000, 5000), 6000 * 10 ** rng.normal(0, 0.2, 5000),
                            20000 * 10 ** rng.normal(0, 0.2, 5000)])     # FSC, PE, PerCP-Cy5.5
    spill = np.array([[1.0, 0.15], [0.02, 1.0]])       # rows = sources (PerCP, PE), columns = detectors
    observed = true.copy()
    observed[:, [2, 1]] = true[:, [2, 1]] @ spill
    out = compensate(observed, ["FSC-A", "PE-A", "PerCP-Cy5-5-A"], ["PerCP-Cy5-5-A", "PE-A"], spill)
    np.testing.assert_allclose(out, true, rtol=1e-9, atol=1e-6)
    assert np.median(observed[:, 1]) / np.median(true[:, 1]) > 1.3   # uncompensated PE biased


def test_bad_matrix_refused() -> None:
    events = np.ones((3, 2))
    with pytest.raises(ValueError, match="absent"):
        compensate(events, ["A", "B"], ["A", "C"], np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        compensate(events, ["A", "B"], ["A", "B"], np.eye(3))
