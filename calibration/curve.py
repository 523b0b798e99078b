"""The bead standard curve log10(bead value) = slope * log10(F) + intercept.

Ordinary least squares in log-log space (BD QuantiBRITE PE instructions; Pannu et al.,
Cytometry 2001, 45:250). The parameter covariance s^2 (X'X)^-1 gives the confidence band
of the line, combined with the cell statistic's own uncertainty into a 95 % AB/C interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """A fitted standard curve with what is needed to propagate its uncertainty."""

    slope: float
    intercept: float
    r2: float
    n_points: int
    residual_sd: float                                  # decades; NaN when dof == 0
    covariance: tuple[tuple[float, float], tuple[float, float]]  # (slope, intercept), NaN when dof == 0
    f_min: float                                        # lowest fitted bead fluorescence
    f_max: float                                        # highest fitted bead fluorescence

    @property
    def dof(self) -> int:
        return self.n_points - 2

    def log_abc(self, f: float | np.ndarray) -> float | np.ndarray:
        """log10 AB/C (bead units) of a fluorescence statistic."""
        return self.slope * np.log10(f) + self.intercept

    def to_abc(self, f: float | np.ndarray) -> float | np.ndarray:
        """AB/C = 10**(slope * log10(F) + intercept); NaN for F <= 0."""
        f_arr = np.asarray(f, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(f_arr > 0, 10.0 ** self.log_abc(np.where(f_arr > 0, f_arr, 1.0)), np.nan)
        return float(out) if out.ndim == 0 else out

    def in_range(self, f: float) -> bool:
        """Whether F lies inside the fitted bead range (no extrapolation)."""
        return bool(self.f_min <= f <= self.f_max)

    def abc_interval(self, f: float, f_se_log: float = 0.0, level: float = 0.95) -> tuple[float, float]:
        """Interval for AB/C at fluorescence ``f``.

        Variance of log10 AB/C = g' C g (confidence band of the fitted line, g = (log10 F, 1),
        C the parameter covariance) + slope^2 * f_se_log^2 (the cell statistic's standard
        error in decades, e.g. from :func:`science.statistics.log_statistic_se`); the
        half-width uses the t quantile with the fit's n - 2 degrees of freedom.
        Raises ``ValueError`` when the fit has no degrees of freedom or F <= 0.
        """
        if self.dof < 1:
            raise ValueError("an interval needs at least 3 fitted bead levels")
        if f <= 0:
            raise ValueError("fluorescence must be positive")
        x = float(np.log10(f))
        g = np.array([x, 1.0])
        var = float(g @ np.array(self.covariance) @ g) + (self.slope * f_se_log) ** 2
        from scipy.special import stdtrit   # here: loading scipy costs ~0.2 s of every process that only reads curves

        half = float(stdtrit(self.dof, 0.5 + level / 2.0)) * np.sqrt(max(var, 0.0))
        centre = float(self.log_abc(f))
        return float(10.0 ** (centre - half)), float(10.0 ** (centre + half))

    def as_dict(self) -> dict[str, object]:
        return {"slope": self.slope, "intercept": self.intercept, "r2": self.r2,
                "n_points": self.n_points, "residual_sd": _none_if_nan(self.residual_sd),
                "covariance": [[_none_if_nan(c) for c in row] for row in self.covariance],
                "range": [self.f_min, self.f_max]}


def _none_if_nan(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def fit_curve(fluorescence: np.ndarray, bead_values: np.ndarray) -> Curve:
    """Least-squares fit of log10(bead value) on log10(fluorescence) (>= 2 positive pairs)."""
    f = np.asarray(fluorescence, dtype=float)
    v = np.asarray(bead_values, dtype=float)
    if f.shape != v.shape or f.size < 2:
        raise ValueError("need at least two (fluorescence, bead value) pairs")
    if np.any(f <= 0) or np.any(v <= 0):
        raise ValueError("fluorescence and bead values must be positive to fit in log space")
    x, y = np.log10(f), np.log10(v)
    design = np.column_stack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - (slope * x + intercept)
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else float("nan")
    dof = x.size - 2
    if dof > 0:
        s2 = rss / dof
        cov = s2 * np.linalg.inv(design.T @ design)
        residual_sd = float(np.sqrt(s2))
    else:
        cov = np.full((2, 2), np.nan)
        residual_sd = float("nan")
    return Curve(
        slope=float(slope), intercept=float(intercept), r2=float(r2), n_points=int(x.size),
        residual_sd=residual_sd,
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        f_min=float(f.min()), f_max=float(f.max()),
    )
