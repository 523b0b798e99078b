"""% HLA-DR+ monocytes: the older criterion some labs still report beside AB/C (< 30 % on
days 3-4 predicts death, Monneret et al. 2006, Intensive Care Med 32:1175).

The positivity cut comes from an HLA-DR-negative population of the same tube, the
granulocytes (neutrophils express no HLA-DR; Döcke et al. 2005, Clin Chem 51:2341, use them
as the internal negative population of the standardized assay's PE histogram): the cut is
their ``quantile`` PE value, so about 1 % of truly negative cells would count as positive.
The same tube, stain, compensation and voltage as the monocytes; no isotype tube needed.
Granulocytes = singlets that are not monocytes, with SSC above the monocytes' 99th
percentile and CD14 below the monocytes' 1st percentile (lymphocytes, which hold HLA-DR+
B cells, sit below the monocytes' SSC and are left out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_REFERENCE_EVENTS = 200


@dataclass(frozen=True)
class Positivity:
    """Share of monocytes above the cut, the cut (linear PE) and the reference it came from."""

    percent: float | None
    threshold: float | None
    reference_events: int
    reference: str = "granulocytes (high SSC, CD14 below the monocytes) of the same tube, 99th percentile of PE"

    def as_dict(self) -> dict[str, object]:
        return {"percent": self.percent, "threshold": self.threshold,
                "reference_events": self.reference_events, "reference": self.reference}


def negative_reference(singlets: np.ndarray, monocytes: np.ndarray, ssc: np.ndarray,
                       cd14: np.ndarray) -> np.ndarray:
    """Mask of the HLA-DR-negative reference events (see module doc)."""
    if not monocytes.any():
        return np.zeros_like(monocytes)
    ssc_top = np.percentile(ssc[monocytes], 99)
    cd14_low = np.percentile(cd14[monocytes], 1)
    return singlets & ~monocytes & (ssc > ssc_top) & (cd14 < cd14_low)


def hla_dr_positive(pe_monocytes: np.ndarray, pe_reference: np.ndarray, quantile: float = 99.0) -> Positivity:
    """% of monocytes whose PE lies above the ``quantile`` of the negative reference."""
    n_ref = int(pe_reference.size)
    if n_ref < MIN_REFERENCE_EVENTS or pe_monocytes.size == 0:
        return Positivity(None, None, n_ref)
    cut = float(np.percentile(pe_reference, quantile))
    return Positivity(float(100.0 * np.mean(pe_monocytes > cut)), cut, n_ref)
