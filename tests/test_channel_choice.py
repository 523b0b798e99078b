"""The bead tube's clustering channels, chosen without a flag (calibration.channel_choice)."""

from __future__ import annotations

import numpy as np

from calibration.channel_choice import bead_signal_channels


def _beads(rng: np.random.Generator, n: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """Six levels lined up in 'A' (measured) and 'B'; 'C' is noise; 'D' carries A's levels through
    a 15 % spillover (an uncompensated instrument); 'E' spans decades but in no order of A's."""
    level = rng.integers(0, 6, n)
    a = 100.0 * 4.0 ** level * np.exp(0.05 * rng.standard_normal(n))
    b = 50.0 * 3.5 ** level * np.exp(0.05 * rng.standard_normal(n))
    c = 30.0 + 5.0 * rng.standard_normal(n)
    d = 0.15 * a + 5.0 * rng.standard_normal(n)
    e = 10.0 ** rng.uniform(1, 4, n)
    return a, np.column_stack([b, c, d, e])


def test_channels_carrying_the_levels_are_chosen() -> None:
    a, others = _beads(np.random.default_rng(0))
    widths = [0.1, 0.1, 0.1, 0.1]
    assert bead_signal_channels(a, 0.1, others, widths, ["B", "C", "D", "E"]) == ("B", "D")


def test_nothing_usable_chooses_nothing() -> None:
    a, others = _beads(np.random.default_rng(1))
    assert bead_signal_channels(a, 0.0, others, [0.1] * 4, list("BCDE")) == ()
    others[:, 0] = np.nan
    assert "B" not in bead_signal_channels(a, 0.1, others, [0.1] * 4, list("BCDE"))
    assert bead_signal_channels(a, 0.1, others[:, :0], [], []) == ()
