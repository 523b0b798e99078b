"""Particle populations of a lysed whole-blood HLA-DR/CD14 tube and of a QuantiBRITE PE tube.

Quantities are instrument-independent: scatter as a fraction of full scale, fluorescence as
molecules (PE = HLA-DR antibodies, 1 PE per L243 antibody; CD14 antibodies for PerCP-Cy5.5)
plus an autofluorescence factor (1 = a lymphocyte). Scatter positions and marker levels follow
the classic SSC vs CD14 picture (monocytes CD14 bright at intermediate SSC, granulocytes CD14
dim at high SSC, lymphocytes CD14 negative at low SSC; Docke et al., Clin Chem 2005).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Autofluorescence of a lymphocyte-sized cell, in PE- and PerCP-Cy5.5-molecule equivalents.
PE_AUTOFLUORESCENCE = 22.0
PERCP_AUTOFLUORESCENCE = 150.0
MONOCYTE_LABELS = ("monocyte", "monocyte_cd14dim")
B_CELL_FRACTION = 0.12           # of lymphocytes; HLA-DR bright
B_CELL_HLADR = 40_000.0
MONOCYTE_CD14 = 60_000.0
MONOCYTE_CD14_DIM = 7_000.0
IMMATURE_GRANULOCYTE_CD14 = 9_000.0     # CD14 dim to intermediate (left shift)
IMMATURE_GRANULOCYTE_SSC = 0.26         # between monocytes (0.17) and neutrophils (0.42)


@dataclass(frozen=True)
class Particles:
    """Per-event true quantities (one entry per event)."""

    label: np.ndarray          # population name
    fsc: np.ndarray            # FSC area, fraction of full scale
    fsc_h: np.ndarray          # FSC height
    ssc: np.ndarray            # SSC area
    ssc_h: np.ndarray          # SSC height
    pe_molecules: np.ndarray   # PE molecules from the stain (= HLA-DR AB/C for cells)
    cd14_molecules: np.ndarray
    autofluorescence: np.ndarray  # 1 = lymphocyte

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def take(self, index: np.ndarray) -> "Particles":
        return Particles(*(getattr(self, f.name)[index] for f in fields(self)))


def concat(parts: list[Particles]) -> Particles:
    return Particles(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Particles)))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _scatter(rng: np.random.Generator, n: int, fsc: float, fsc_cv: float, ssc: float, ssc_cv: float,
             h_ratio: float = 0.92, h_sd: float = 0.02) -> tuple[np.ndarray, ...]:
    f = _lognormal(rng, fsc, fsc_cv, n)
    s = _lognormal(rng, ssc, ssc_cv, n)
    return f, f * rng.normal(h_ratio, h_sd, n), s, s * rng.normal(h_ratio + 0.03, h_sd, n)


def _make(label: str, n: int, scatter: tuple[np.ndarray, ...], pe: np.ndarray, cd14: np.ndarray,
          af: np.ndarray) -> Particles:
    return Particles(np.full(n, label, dtype="<U24"), *scatter, pe, cd14, af)


def lymphocytes(rng: np.random.Generator, n: int) -> Particles:
    """T/NK cells (HLA-DR negative) and ~12 % B cells (HLA-DR bright); CD14 negative."""
    is_b = rng.random(n) < B_CELL_FRACTION
    pe = np.where(is_b, _lognormal(rng, B_CELL_HLADR, 0.35, n), 0.0)
    return _make("lymphocyte", n, _scatter(rng, n, 0.24, 0.07, 0.055, 0.15), pe, np.zeros(n),
                 _lognormal(rng, 1.0, 0.3, n))


def monocytes(rng: np.random.Generator, n: int, abc: float, sigma: float, cd14_dim_fraction: float,
              bimodal: tuple[float, float] | None, cd14_dim_hladr: float = 1.0,
              cd14: float = MONOCYTE_CD14) -> Particles:
    """CD14-bright monocytes (median ``cd14`` molecules) with lognormal HLA-DR (median ``abc``),
    optionally a second HLA-DR mode (``bimodal`` = (fraction, median)) and a CD14-dim subset
    (``cd14_dim_fraction``, at the monocytes' own scatter) whose HLA-DR is ``cd14_dim_hladr``
    times that of the others (1: the same, as for classical monocytes that shed CD14)."""
    pe = _lognormal(rng, abc, sigma, n)
    if bimodal is not None:
        fraction, second = bimodal
        pe = np.where(rng.random(n) < fraction, _lognormal(rng, second, sigma, n), pe)
    dim = rng.random(n) < cd14_dim_fraction
    if cd14_dim_hladr != 1.0:
        pe = np.where(dim, pe * cd14_dim_hladr, pe)
    cd14 = np.where(dim, _lognormal(rng, MONOCYTE_CD14_DIM, 0.35, n), _lognormal(rng, cd14, 0.3, n))
    p = _make("monocyte", n, _scatter(rng, n, 0.40, 0.08, 0.17, 0.14), pe, cd14, _lognormal(rng, 2.0, 0.3, n))
    p.label[dim] = "monocyte_cd14dim"
    return p


def granulocytes(rng: np.random.Generator, n: int) -> Particles:
    """Neutrophils: high SSC, CD14 dim, HLA-DR negative, brighter autofluorescence."""
    return _make("granulocyte", n, _scatter(rng, n, 0.46, 0.07, 0.42, 0.13), np.zeros(n),
                 _lognormal(rng, 3_500.0, 0.45, n), _lognormal(rng, 4.0, 0.3, n))


def immature_granulocytes(rng: np.random.Generator, n: int, cd14: float = IMMATURE_GRANULOCYTE_CD14,
                          ssc: float = IMMATURE_GRANULOCYTE_SSC) -> Particles:
    """Left-shifted granulocytes (sepsis: band forms, metamyelocytes): SSC between monocytes
    and neutrophils, reaching down into the monocyte region, CD14 dim to intermediate, HLA-DR
    negative."""
    return _make("immature_granulocyte", n, _scatter(rng, n, 0.43, 0.08, ssc, 0.18), np.zeros(n),
                 _lognormal(rng, cd14, 0.5, n), _lognormal(rng, 3.0, 0.3, n))


def eosinophils(rng: np.random.Generator, n: int) -> Particles:
    """Eosinophils: SSC at or above the neutrophils', CD14 negative, HLA-DR negative, and the
    brightest autofluorescence of the leukocytes (it shows as dim PerCP and PE)."""
    return _make("eosinophil", n, _scatter(rng, n, 0.44, 0.07, 0.52, 0.12), np.zeros(n),
                 _lognormal(rng, 300.0, 0.5, n), _lognormal(rng, 10.0, 0.3, n))


def red_cell_ghosts(rng: np.random.Generator, n: int) -> Particles:
    """Lyse-no-wash tubes keep what a wash removes: red-cell ghosts (low FSC reaching the
    lymphocytes' edge, low SSC) and platelets (lowest FSC and SSC), unstained."""
    platelet = rng.random(n) < 0.4
    f = np.where(platelet, _lognormal(rng, 0.03, 0.5, n), _lognormal(rng, 0.11, 0.35, n))
    s = np.where(platelet, _lognormal(rng, 0.015, 0.5, n), _lognormal(rng, 0.035, 0.45, n))
    scatter = (f, f * rng.normal(0.92, 0.04, n), s, s * rng.normal(0.95, 0.04, n))
    p = _make("red_cell_ghost", n, scatter, np.zeros(n), np.zeros(n), _lognormal(rng, 0.3, 0.4, n))
    p.label[platelet] = "platelet"
    return p


def debris(rng: np.random.Generator, n: int) -> Particles:
    """Platelets, red-cell ghosts and fragments: low FSC, unstained."""
    return _make("debris", n, _scatter(rng, n, 0.05, 0.5, 0.03, 0.7, h_sd=0.05), np.zeros(n), np.zeros(n),
                 _lognormal(rng, 0.5, 0.5, n))


def beads(rng: np.random.Generator, n: int, molecules: float, cv: float, label: str) -> Particles:
    """Singlet beads: tight scatter, PE = ``molecules`` per bead with a lognormal ``cv``."""
    pe = _lognormal(rng, molecules, cv, n) if molecules > 0 else np.zeros(n)
    return _make(label, n, _scatter(rng, n, 0.30, 0.025, 0.12, 0.03, h_ratio=0.95, h_sd=0.01), pe,
                 np.zeros(n), _lognormal(rng, 0.1, 0.2, n))


def doublets(rng: np.random.Generator, pool: Particles, n: int) -> Particles:
    """Coincident pairs drawn from ``pool``: areas and molecules add, heights barely grow
    (so FSC-A/FSC-H nears 2)."""
    a = pool.take(rng.integers(0, len(pool), n))
    b = pool.take(rng.integers(0, len(pool), n))
    bump = rng.normal(1.08, 0.04, n)
    return Particles(np.full(n, "doublet", dtype="<U24"), a.fsc + b.fsc, np.maximum(a.fsc_h, b.fsc_h) * bump,
                     a.ssc + b.ssc, np.maximum(a.ssc_h, b.ssc_h) * bump, a.pe_molecules + b.pe_molecules,
                     a.cd14_molecules + b.cd14_molecules, a.autofluorescence + b.autofluorescence)
