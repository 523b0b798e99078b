"""Automatic monocyte gate: a seeded Gaussian mixture on (asinh CD14, asinh SSC).

The mixture (Dempster, Laird & Rubin 1977 EM; scikit-learn GaussianMixture) is fitted on a
seeded subsample of singlet leukocytes, its components are given roles by rule, and every
event is then classified (vectorised, in chunks):

- lymphocyte and granulocyte SSC = the lowest and highest SSC centres among components holding
  >= 5 % of events; neutrophils = the largest of those in the upper half of that SSC span;
- monocytes = the densest component (highest peak weight / sqrt(det cov), so a compact cluster
  wins over diffuse doublet components) with its SSC centre above the lymphocytes' and more
  than 2 SD below the neutrophils', and its CD14 centre more than 2 SD above the neutrophils',
  plus any component
  centred within 1 SD of its SSC that also clears that CD14 bound: CD14-dim monocytes are
  kept, CD14-dim granulocytes (shoulder included) are left out;
- gate = posterior probability of the monocyte components >= ``posterior_min`` and
  Mahalanobis distance^2 to one of them <= the chi-square(2) ``ellipse_quantile``.

QC beyond Ashman's D: ``dim_zone`` counts CD14-dim events the gate left out at the monocytes'
SSC, or took in above it (a mixed monocyte/immature-granulocyte component), and asks for a
review when either is a non-trivial share of the gated monocytes (thresholds in
``GatingQCConfig``).

HLA-DR (PE) is never used, so a bimodal HLA-DR cannot move the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from science.qc import QC
from science.sampling import subsample_index
from science.separation import ashman_d
from science.statistics import mad_sd
from gating.result import Component, GateStep, GatingQCConfig, MonocyteGeometry
from science.transform import asinh, asinh_cofactor

MAJOR_WEIGHT = 0.05        # components at least this large anchor lymphocytes / granulocytes
NEIGHBOUR_WEIGHT = 0.01    # components at least this large count as neighbours for separation
CANDIDATE_SSC_SDS = 2.0    # monocyte candidates: SSC centre this many SDs below neutrophils
DIM_SSC_SDS = 1.0          # CD14-dim monocyte components: SSC centre within this many SDs
DIM_CD14_SDS = 2.0         # ... and CD14 centre this many granulocyte SDs above granulocytes
_CHUNK = 1 << 18


def _roles(means: np.ndarray, covs: np.ndarray, weights: np.ndarray) -> list[str] | None:
    """Role of each component by the rules above; None when no monocyte component exists."""
    major = np.flatnonzero(weights >= MAJOR_WEIGHT)
    lymph_ssc, gran_ssc = means[major, 1].min(), means[major, 1].max()
    upper = major[means[major, 1] > 0.5 * (lymph_ssc + gran_ssc)]
    neutrophils = int(upper[np.argmax(weights[upper])]) if upper.size else int(major[0])
    cd14_min = means[neutrophils, 0] + DIM_CD14_SDS * np.sqrt(covs[neutrophils, 0, 0])
    ssc_max = means[neutrophils, 1] - CANDIDATE_SSC_SDS * np.sqrt(covs[neutrophils, 1, 1])
    candidates = np.flatnonzero((means[:, 1] > lymph_ssc) & (means[:, 1] < ssc_max)
                                & (means[:, 0] > cd14_min))
    if candidates.size == 0:
        return None
    # the densest candidate: a compact monocyte cluster beats diffuse doublet components
    peak = weights[candidates] / np.sqrt(np.linalg.det(covs[candidates]))
    bright = int(candidates[np.argmax(peak)])
    ssc_sd = np.sqrt(covs[bright, 1, 1])
    roles = []
    for j in range(len(weights)):
        if j == bright or (abs(means[j, 1] - means[bright, 1]) <= DIM_SSC_SDS * ssc_sd
                           and means[j, 0] > cd14_min):
            roles.append("monocytes")
        elif abs(means[j, 1] - lymph_ssc) <= abs(means[j, 1] - gran_ssc):
            roles.append("lymphocytes")
        else:
            roles.append("granulocytes")
    return roles


@dataclass(frozen=True)
class DimZone:
    """CD14-dim events (above the lymphocytes, below the CD14-bright monocytes) near the
    monocytes' scatter, as shares of the gated monocytes (measured on the fit subsample)."""

    left_out: float      # not gated, SSC within the monocytes' core (median +/- 1 robust SD)
    taken_in: float      # gated, SSC above the monocytes' core (> median + k robust SDs)


def dim_zone(x: np.ndarray, gated: np.ndarray, means: np.ndarray, covs: np.ndarray,
             weights: np.ndarray, roles: list[str], taken_in_sds: float) -> DimZone:
    """Events the mixture may have mis-assigned between monocytes and granulocytes.

    Scatter reference: median and robust SD (1.4826 MAD) of the SSC of gated CD14-bright
    events (CD14 above the centre - 1 SD of the monocyte component with the brightest CD14),
    which a mixed CD14-dim component cannot widen. CD14-dim band: above the largest
    lymphocyte component's CD14 + 3 SD (or the lowest component centre when none is a
    lymphocyte) and below that brightest component's CD14 - 2 SD.
    """
    n_gated = int(gated.sum())
    mono = [j for j, r in enumerate(roles) if r == "monocytes"]
    bright = max(mono, key=lambda j: means[j, 0])
    cd14_sd = np.sqrt(covs[bright, 0, 0])
    core = gated & (x[:, 0] > means[bright, 0] - cd14_sd)
    if core.sum() < 10:
        return DimZone(0.0, 0.0)
    ssc_median = float(np.median(x[core, 1]))
    ssc_sd = mad_sd(x[core, 1], ssc_median)
    lymph = [j for j, r in enumerate(roles) if r == "lymphocytes"]
    if lymph:
        j = max(lymph, key=lambda i: weights[i])
        floor = means[j, 0] + 3.0 * np.sqrt(covs[j, 0, 0])
    else:
        floor = float(means[:, 0].min())
    band = (x[:, 0] > floor) & (x[:, 0] < means[bright, 0] - 2.0 * cd14_sd)
    left_out = band & ~gated & (np.abs(x[:, 1] - ssc_median) <= ssc_sd)
    taken_in = band & gated & (x[:, 1] > ssc_median + taken_in_sds * ssc_sd)
    return DimZone(float(left_out.sum() / n_gated), float(taken_in.sum() / n_gated))


def _log_densities(x: np.ndarray, means: np.ndarray, covs: np.ndarray,
                   weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(weight_j * N(x | mean_j, cov_j)) and Mahalanobis d^2, both (n, k), for 2-D ``x``.

    Closed form of the bivariate normal: d^2 = dx' inv(C) dx with the 2x2 inverse written out.
    """
    n, k = x.shape[0], len(weights)
    logp = np.empty((n, k))
    d2 = np.empty((n, k))
    for j in range(k):
        (a, b), (_, c) = covs[j]
        det = a * c - b * b
        dx, dy = x[:, 0] - means[j, 0], x[:, 1] - means[j, 1]
        d2[:, j] = (c * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / det
        logp[:, j] = np.log(weights[j]) - 0.5 * (d2[:, j] + np.log(det) + 2 * np.log(2 * np.pi))
    return logp, d2


# 2x2 covariances: threaded BLAS only adds hand-offs between threads (several times slower on a
# busy 2-core host), so the fit runs single-threaded, as the bead mixtures do.
@threadpool_limits.wrap(limits=1, user_api="blas")
def monocyte_gate(cd14: np.ndarray, ssc: np.ndarray, parent: np.ndarray, cd14_channel: str,
                  ssc_channel: str, config: GatingQCConfig = GatingQCConfig(),
                  seed: int = 0) -> GateStep:
    """Monocytes among ``parent`` (singlet leukocytes) from CD14 and SSC (linear values)."""
    index = np.flatnonzero(parent)
    mask = np.zeros(cd14.shape[0], dtype=bool)
    if index.size < 10 * config.components:
        return GateStep(mask=mask, geometry=None, qc=QC("fail", (
            f"only {index.size} singlet leukocytes: too few to find monocytes",)))
    fit_index = index[subsample_index(index.size, config.subsample, seed)]
    c14, css = asinh_cofactor(cd14[fit_index]), asinh_cofactor(ssc[fit_index])
    x = np.column_stack([asinh(cd14[fit_index], c14), asinh(ssc[fit_index], css)])
    gmm = GaussianMixture(n_components=config.components, covariance_type="full",
                          reg_covar=1e-4, n_init=1, max_iter=200,
                          random_state=seed).fit(x)
    means, covs, weights = gmm.means_, gmm.covariances_, gmm.weights_
    roles = _roles(means, covs, weights)
    if roles is None:
        return GateStep(mask=mask, geometry=None, qc=QC("fail", (
            "no CD14-bright cluster at intermediate SSC: monocytes not found",)))
    mono = np.array([r == "monocytes" for r in roles])
    d2_max = float(-2.0 * np.log(1.0 - config.ellipse_quantile))  # chi-square(2) quantile
    for start in range(0, index.size, _CHUNK):
        rows = index[start:start + _CHUNK]
        xc = np.column_stack([asinh(cd14[rows], c14), asinh(ssc[rows], css)])
        _, d2_mono = _log_densities(xc, means[mono], covs[mono], weights[mono])
        inside = d2_mono.min(axis=1) <= d2_max           # only these can pass: score them fully
        logp, _ = _log_densities(xc[inside], means, covs, weights)
        top = logp.max(axis=1, keepdims=True)
        p = np.exp(logp - top)
        posterior = p[:, mono].sum(axis=1) / p.sum(axis=1)
        mask[rows[inside]] = posterior >= config.posterior_min
    neighbours = np.flatnonzero(~mono & (weights >= NEIGHBOUR_WEIGHT))
    separation = min((ashman_d(means[i], covs[i], means[j], covs[j])
                      for i in np.flatnonzero(mono) for j in neighbours), default=float("inf"))
    components = tuple(
        Component(role=roles[j], weight=float(weights[j]),
                  mean=(float(means[j, 0]), float(means[j, 1])),
                  covariance=((float(covs[j, 0, 0]), float(covs[j, 0, 1])),
                              (float(covs[j, 1, 0]), float(covs[j, 1, 1]))))
        for j in np.argsort(means[:, 1]))
    geometry = MonocyteGeometry(cd14_channel=cd14_channel, ssc_channel=ssc_channel,
                                cd14_cofactor=c14, ssc_cofactor=css, components=components,
                                distance2_max=d2_max, posterior_min=config.posterior_min)
    zone = dim_zone(x, mask[fit_index], means, covs, weights, roles, config.dim_taken_in_sds)
    n_gated = int(mask.sum())
    findings = []
    if zone.left_out > config.dim_left_out_review_above:
        findings.append(("review", f"a CD14-dim population (about {zone.left_out * n_gated:.0f} "
                                   f"events, {zone.left_out:.0%} of the gated monocytes) at the "
                                   f"monocytes' SSC, between monocytes and granulocytes, could "
                                   f"not be separated and was left out: check the gate"))
    if zone.taken_in > config.dim_taken_in_review_above:
        findings.append(("review", f"CD14-dim events above the monocytes' SSC (about "
                                   f"{zone.taken_in * n_gated:.0f} events, {zone.taken_in:.0%} of "
                                   f"the gated monocytes) were taken into the gate, likely "
                                   f"immature granulocytes merged with CD14-dim monocytes: "
                                   f"check the gate"))
    if separation < config.separation_fail_below:
        findings.append(("fail", f"monocytes not resolved from their neighbours "
                                 f"(Ashman's D {separation:.2f} < {config.separation_fail_below})"))
    elif separation < config.separation_review_below:
        findings.append(("review", f"monocytes poorly separated from their neighbours "
                                   f"(Ashman's D {separation:.2f} < {config.separation_review_below})"))
    return GateStep(mask=mask, geometry=geometry, qc=QC.from_findings(findings),
                    separation=separation)
