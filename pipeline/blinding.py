"""What a blinded reader may see of a result collected after randomization.

Interferon gamma raises mHLA-DR strongly, so a post-randomization value, or anything it can be
derived from (AB/C, its interval, category, the cut-off flag, the monocytes' PE statistic), could
unblind the trial (EMA guideline on computerised systems and electronic data in clinical
trials, 2023: blinded users are never shown blind-breaking data). Such values are shown only to
the ``unblinded`` role, and each such read is audited; every other output withholds them with
:data:`WITHHELD` and :func:`withheld_reasons`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

WITHHELD = "withheld (collected after randomization)"
# A QC reason that states the monocytes' PE value (e.g. "monocyte PE median 812 lies outside the
# bead range 350..6.2e+04"); its numbers go, the finding stays.
_PE_VALUE = ("monocyte PE", "AB/C about")
_NUMBER = re.compile(r"\s*-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?(?:\.\.-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?)?")


def withheld_reasons(reasons: Iterable[str]) -> tuple[str, ...]:
    """QC reasons as a blinded reader may see them: reasons that state the PE value lose their
    numbers (and say so); the others are unchanged."""
    return tuple(f"{_NUMBER.sub('', r).strip()} (values withheld: collected after randomization)"
                 if any(v in r for v in _PE_VALUE) else r for r in reasons)


# The fields of a result document (the contract's ``analyze`` fields) that state or derive from the value.
BLIND_BREAKING = ("abc", "abc_interval", "below_threshold", "category", "pe_statistic", "p_below_threshold",
                  "near_cutoff", "hla_dr_positive_percent")
# Parts of the gating record that state the value or its position against the cut-off.
BLIND_BREAKING_GATES = ("abc_alternatives", "call", "hla_dr_positive")
# The fields of its ``calibration`` that give the bead curve (which with the PE statistic is the value).
CURVE_FIELDS = ("slope", "intercept", "r2", "peaks")


def withheld_document(document: dict[str, Any]) -> dict[str, Any]:
    """A result document as a blinded reader may see it: the value's fields and its bead curve
    null, the QC reasons without the PE value, ``"blinded": true``."""
    out = {**document, **{k: None for k in BLIND_BREAKING if k in document}, "blinded": True}
    if isinstance(document.get("calibration"), dict):
        out["calibration"] = {**document["calibration"], **{k: None for k in CURVE_FIELDS if k in document["calibration"]}}
    if isinstance(document.get("gates"), dict):
        out["gates"] = {k: v for k, v in document["gates"].items() if k not in BLIND_BREAKING_GATES}
    if isinstance(document.get("qc"), dict):
        out["qc"] = {**document["qc"], "reasons": list(withheld_reasons(document["qc"].get("reasons", ())))}
    return out
