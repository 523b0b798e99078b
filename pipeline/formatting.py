"""How numbers read for a person: one formatter per kind of value, shared by the command line,
reports, artifacts and the lab console (the JSON documents keep full precision)."""

from __future__ import annotations

import math


def abc(value: float | None) -> str:
    """AB/C as a whole number with thousands separators (``7,652``); ``-`` when absent."""
    return "-" if value is None or not math.isfinite(value) else f"{value:,.0f}"


def interval(bounds: tuple[float, float] | list[float] | None) -> str:
    """A 95 % interval ``7,338-7,981``; ``-`` when absent."""
    return "-" if not bounds else f"{abc(bounds[0])}-{abc(bounds[1])}"


def number(value: float | None, digits: int = 4) -> str:
    """A measured value with ``digits`` significant digits, thousands separated (``1,154.8``)."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    decimals = max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0)
    return f"{value:,.{decimals}f}"


def setting(value: float | None) -> str:
    """A detector setting (voltage, gain) as written: ``450``, ``1.5``; ``unknown`` when absent."""
    return "unknown" if value is None else f"{value:g}"


def yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def percent(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{decimals}%}"


def call_text(p_below: float | None, near: bool | None) -> str:
    """How sure the value is to lie below the cut-off, in words (``p_below_threshold``)."""
    if p_below is None:
        return "-"
    shown = "<0.001" if p_below < 0.001 else ">0.999" if p_below > 0.999 else f"{p_below:.3f}"
    return f"P(true AB/C below the cut-off) {shown}" + ("  NEAR THE CUT-OFF" if near else "")


def preanalytics_text(pre: dict | None) -> str:
    """Draw, acquisition and the delay between them, in words."""
    if not pre:
        return "-"
    delay = (f"{pre['delay_hours']:.1f} h" if pre.get("delay_hours") is not None
             else f"{pre['delay_days']} day(s) (dates only)" if pre.get("delay_days") is not None else "unknown")
    def when(iso: str | None) -> str:
        return iso.replace("T", " ")[:16] if iso else "unknown"

    drawn = f"{when(pre['drawn'])} ({pre['drawn_from']})" if pre.get("drawn") else "unknown"
    extra = "".join(f"  {k.replace('_', ' ')} {pre[k]}" for k in ("tube_type", "storage") if pre.get(k))
    return f"drawn {drawn}  acquired {when(pre.get('acquired'))}  delay {delay}{extra}"
