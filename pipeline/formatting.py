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
