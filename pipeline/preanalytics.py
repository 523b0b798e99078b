"""Pre-analytics: how long and how the blood waited between the draw and the cytometer.

EDTA blood is kept on ice and stained within 4 h of the draw (Döcke et al. 2005, Clin Chem
51:2341, the 8-laboratory standardization); at room temperature mHLA-DR rises with storage
(Jämsä et al. 2011, J Clin Lab Anal 25:118; Monneret et al. 2010, Crit Care 14:432), so a
late tube can read above 8,000 AB/C for a patient below it. The draw comes from the sample
log (registry column ``collected_at``, optional ``tube_type`` and ``storage``) or from the
file's ``COLLECTION DATE`` + ``COLLECTION TIME`` keywords; the acquisition from
``$DATE`` + ``$BTIM``. Pure functions: findings ``(status, reason)`` plus notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

EXPECTED_TUBE = "EDTA"
_COLD = re.compile(r"\b(ice|on ice|fridge|refrigerat\w*|cold)\b", re.I)
_WARM = re.compile(r"\b(room|rt|ambient|bench)\b", re.I)
_DEGREES = re.compile(r"(-?\d+(?:[.,]\d+)?)\s*(?:-\s*(\d+(?:[.,]\d+)?))?\s*°?\s*c\b", re.I)
COLD_MAX_C = 8.0                 # 2-8 °C: refrigerated / on ice


@dataclass(frozen=True)
class SampleLog:
    """What the sample log says about one draw (all optional)."""

    collected_at: date | datetime | None = None
    tube_type: str = ""
    storage: str = ""


@dataclass(frozen=True)
class Preanalytics:
    """Draw, acquisition and delay as shown in reports, with the QC findings and notes."""

    drawn: str | None
    drawn_from: str | None                 # 'sample log' or 'keywords'
    acquired: str | None
    delay_hours: float | None
    delay_days: int | None
    tube_type: str
    storage: str
    findings: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {"drawn": self.drawn, "drawn_from": self.drawn_from, "acquired": self.acquired,
                "delay_hours": self.delay_hours, "delay_days": self.delay_days,
                "tube_type": self.tube_type or None, "storage": self.storage or None}


def _local(t: datetime) -> datetime:
    return t.astimezone().replace(tzinfo=None) if t.tzinfo else t


def _iso(t: date | datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def storage_finding(storage: str) -> tuple[str, str] | None:
    """Review a storage that is not cold (on ice / 2-8 °C); None when cold or not stated."""
    text = storage.strip()
    if not text or _COLD.search(text):
        return None
    m = _DEGREES.search(text)
    if m:
        top = float((m.group(2) or m.group(1)).replace(",", "."))
        if top <= COLD_MAX_C:
            return None
        return ("review", f"blood stored at {text}: the assay asks for blood kept on ice or at 2-8 °C "
                          "(mHLA-DR rises at room temperature; Döcke 2005, Jämsä 2011)")
    if _WARM.search(text):
        return ("review", f"blood stored at {text}: the assay asks for blood kept on ice or at 2-8 °C "
                          "(mHLA-DR rises at room temperature; Döcke 2005, Jämsä 2011)")
    return ("review", f"storage {text!r} not understood: the assay asks for blood kept on ice or at 2-8 °C")


def check(log: SampleLog, keyword_draw: date | datetime | None, acquired: datetime | None, *,
          max_hours: float, unknown_is_review: bool) -> Preanalytics:
    """Pre-analytical findings for one tube (see module doc). ``acquired`` at 00:00:00 is taken
    as a date without a time ($BTIM absent)."""
    findings: list[tuple[str, str]] = []
    notes: list[str] = []
    drawn, source = (log.collected_at, "sample log") if log.collected_at is not None else \
        (keyword_draw, "keywords") if keyword_draw is not None else (None, None)
    hours: float | None = None
    days: int | None = None
    acq_has_time = acquired is not None and (acquired.hour, acquired.minute, acquired.second) != (0, 0, 0)
    if drawn is None:
        (findings.append(("review", "draw time unknown (no collected_at in the sample log, no COLLECTION "
                                    "DATE keyword): the time to acquisition cannot be checked"))
         if unknown_is_review else
         notes.append("draw time unknown (no collected_at, no COLLECTION DATE keyword): the time to "
                      "acquisition was not checked"))
    elif acquired is not None:
        if isinstance(drawn, datetime) and acq_has_time:
            hours = round((acquired - _local(drawn)).total_seconds() / 3600.0, 2)
            if hours < 0:
                findings.append(("review", f"acquired {acquired:%Y-%m-%d %H:%M}, {-hours:.1f} h before the "
                                           f"draw ({_local(drawn):%Y-%m-%d %H:%M}): check the draw time"))
            elif hours > max_hours:
                findings.append(("review", f"{hours:.1f} h from draw to acquisition (drawn "
                                           f"{_local(drawn):%Y-%m-%d %H:%M}, acquired {acquired:%Y-%m-%d %H:%M}), "
                                           f"above the {max_hours:g} h limit (Döcke 2005: on ice, stained "
                                           "within 4 h): mHLA-DR may read too high"))
        days = (acquired.date() - (drawn.date() if isinstance(drawn, datetime) else drawn)).days
        if hours is None:
            if days > 0:
                findings.append(("review", f"acquired {days} day{'s' if days > 1 else ''} after the draw date "
                                           f"({_iso(drawn)[:10]}; only dates known): mHLA-DR may read too "
                                           f"high (limit {max_hours:g} h)"))
            elif days < 0:
                findings.append(("review", f"acquired {-days} day(s) before the draw date ({_iso(drawn)[:10]}): "
                                           "check the collection date"))
            else:
                notes.append("draw and acquisition on the same day; the hours between them are not known")
    if log.tube_type and EXPECTED_TUBE.lower() not in log.tube_type.lower():
        findings.append(("review", f"tube type {log.tube_type}: the assay is validated on {EXPECTED_TUBE} blood"))
    if (found := storage_finding(log.storage)) is not None:
        findings.append(found)
    return Preanalytics(drawn=_iso(drawn), drawn_from=source, acquired=_iso(acquired), delay_hours=hours,
                        delay_days=days, tube_type=log.tube_type, storage=log.storage,
                        findings=tuple(findings), notes=tuple(notes))
