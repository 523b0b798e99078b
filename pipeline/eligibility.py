"""Trial screening rules: one patient's registry facts + results -> eligible / not_eligible / pending.

Rules (DESIGN.md, "Trial eligibility"): SOFA of the first 24 h >= 6, mechanically ventilated, no
exclusion, and a *decisive* mHLA-DR < threshold (8,000 AB/C) collected on ICU day 5..10, where the
ICU day counts calendar days from the admission date (admission day = 0). Decisive = QC ``pass``,
or QC ``review`` approved by a technician; QC ``fail`` never counts.

- ``not_eligible`` as soon as a clinical criterion fails, or once the window has closed
  (today > admission + last day) with no decisive in-window value < threshold and nothing left
  to decide;
- ``eligible`` (awaiting consent, or "randomized on DATE" once the registry says so) as soon as a
  decisive in-window value is < threshold and the clinical criteria hold;
- ``pending`` otherwise: window still open, or an in-window result still awaits its calibration
  or a technician's review (its outcome could still change the decision).

The dates these rules read are parsed here (:func:`parse_date_or_datetime`, for the registry and
the store), and :func:`admission_notes` says where a result's ICU day comes from.
Pure functions on plain frozen dataclasses: no database, no clock (``today`` is a parameter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Sequence

Status = Literal["eligible", "not_eligible", "pending"]
Review = Literal["approve", "reject"]

NO_REGISTRY_ENTRY = "no registry entry"


@dataclass(frozen=True)
class PatientFacts:
    """One registry row (clinical facts come from the registry, never from FCS files)."""

    patient_id: str
    icu_admission: date | datetime
    sofa_24h: int
    mechanical_ventilation: bool
    exclusion: str = ""                      # empty = no exclusion
    randomized_at: date | datetime | None = None

    @property
    def admission_date(self) -> date:
        return as_date(self.icu_admission)


@dataclass(frozen=True)
class ResultFacts:
    """One patient result as the rules see it.

    ``qc_status`` is ``pass``/``review``/``fail`` for a measurement, or ``pending_calibration``
    for a patient tube that waits for its bead calibration (``abc`` is then None).
    ``review`` is the technician's latest decision on a ``review`` result, if any.
    """

    collection_date: date
    abc: float | None
    qc_status: str
    review: Review | None = None
    measurement_id: int | None = None
    file: str | None = None
    p_below: float | None = None          # p_below_threshold of the measurement
    near_cutoff: bool | None = None


@dataclass(frozen=True)
class Rules:
    """Configurable thresholds (defaults: the trial protocol)."""

    abc_threshold: float = 8000.0
    window_first_day: int = 5
    window_last_day: int = 10
    sofa_min: int = 6
    repeat_near_cutoff: bool = False      # a value near the cut-off asks for a repeat while the window is open


@dataclass(frozen=True)
class Decision:
    """The screening status with one reason per criterion and the result it rests on."""

    patient_id: str
    status: Status
    reasons: tuple[str, ...]
    measurement_id: int | None = None
    abc: float | None = None
    icu_day: int | None = None
    file: str | None = None


def as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def icu_day(admission: date | datetime, collection: date | datetime) -> int:
    """Calendar days from the ICU admission date to the collection date (admission day = 0)."""
    return (as_date(collection) - as_date(admission)).days


def parse_date_or_datetime(text: str) -> date | datetime:
    """ISO 8601 date (``2026-03-01``) or date-time (``2026-03-01T08:30``, ``2026-03-01 08:30:00``)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def admission_notes(registry: date | datetime | None, keyword: date | datetime | None,
                    collection: date | None) -> list[str]:
    """What a measurement says about where its ICU day comes from: the registry (DESIGN.md: the
    keyword is used only when the registry lacks the patient), and any disagreement between the
    two sources, which a person must settle."""
    if registry is None:
        return ["ICU admission taken from the file's keyword (the registry gives none)"] if keyword is not None else []
    if keyword is None or as_date(keyword) == as_date(registry) or collection is None:
        return []
    return [f"ICU day {icu_day(registry, collection)} from the registry (admission {as_date(registry).isoformat()}) "
            f"but {icu_day(keyword, collection)} from the file's keyword (admission {as_date(keyword).isoformat()}): "
            "the registry's is used; check which is right"]


def in_window(day: int | None, rules: Rules) -> bool | None:
    """Whether an ICU day falls in the inclusive sampling window (None when unknown)."""
    if day is None:
        return None
    return rules.window_first_day <= day <= rules.window_last_day


def below_threshold(abc: float | None, qc_status: str, rules: Rules) -> bool | None:
    """Whether a value is under the trial cut-off (None when QC ``fail`` or no value)."""
    if abc is None or qc_status == "fail":
        return None
    return abc < rules.abc_threshold


@dataclass(frozen=True)
class ResultRules:
    """The per-result rules: a result's ICU day, whether it falls in the window, and whether its
    value is under the cut-off (each None when unknown)."""

    icu_day: int | None
    in_window: bool | None
    below_threshold: bool | None


def result_rules(admission: date | datetime | None, collection: date | datetime | None, abc: float | None,
                 qc_status: str, rules: Rules, *, known_day: int | None = None) -> ResultRules:
    """The per-result rules from a result's facts, the one place they are computed (DESIGN.md,
    "Trial eligibility"): the ICU day from the registry's admission (``known_day``, the day the
    file's own keyword gave, only when there is no admission), then the window and the cut-off."""
    day = icu_day(admission, collection) if admission is not None and collection is not None else known_day
    return ResultRules(day, in_window(day, rules), below_threshold(abc, qc_status, rules))


def is_blinded(collection: date, randomized_at: date | datetime | None) -> bool:
    """A result collected after randomization (on a later calendar day) could unblind the trial.

    Collection dates carry no time, so a sample taken on the randomization day counts as the
    pre-randomization (screening) sample.
    """
    return randomized_at is not None and collection > as_date(randomized_at)


def is_decisive(result: ResultFacts) -> bool:
    """QC ``pass``, or QC ``review`` approved by a technician; never QC ``fail``."""
    if result.abc is None:
        return False
    if result.qc_status == "pass":
        return True
    return result.qc_status == "review" and result.review == "approve"


def awaits_decision(result: ResultFacts) -> bool:
    """A result whose outcome is still open: no calibration yet, or review not yet decided."""
    if result.qc_status == "pending_calibration":
        return True
    return result.qc_status == "review" and result.review is None


def _clinical_reasons(patient: PatientFacts, rules: Rules) -> tuple[list[str], list[str]]:
    """(failed, met) clinical criteria, each as a human-readable reason."""
    failed: list[str] = []
    met: list[str] = []
    if patient.sofa_24h >= rules.sofa_min:
        met.append(f"SOFA 24 h {patient.sofa_24h} >= {rules.sofa_min}")
    else:
        failed.append(f"SOFA 24 h {patient.sofa_24h} < {rules.sofa_min}")
    if patient.mechanical_ventilation:
        met.append("mechanically ventilated")
    else:
        failed.append("not mechanically ventilated")
    if patient.exclusion.strip():
        failed.append(f"exclusion: {patient.exclusion.strip()}")
    else:
        met.append("no exclusion")
    return failed, met


def _fmt(abc: float) -> str:
    return f"{abc:,.0f}"


def evaluate(
    patient_id: str,
    patient: PatientFacts | None,
    results: Sequence[ResultFacts],
    today: date,
    rules: Rules = Rules(),
) -> Decision:
    """Screening decision for one patient on ``today``.

    Results collected after randomization (see :func:`is_blinded`) are ignored: they cannot
    bear on inclusion and could unblind the trial.
    """
    if patient is None:
        shown = _latest(results)
        return Decision(patient_id, "pending", (NO_REGISTRY_ENTRY,), *_shown_fields(shown, None))

    admission = patient.admission_date
    usable = [r for r in results if not is_blinded(r.collection_date, patient.randomized_at)]
    facts = {id(r): result_rules(admission, r.collection_date, r.abc, r.qc_status, rules) for r in usable}
    in_win = [r for r in usable if facts[id(r)].in_window]
    threshold = _fmt(rules.abc_threshold)
    failed, met = _clinical_reasons(patient, rules)

    below = sorted(
        (r for r in in_win if is_decisive(r) and facts[id(r)].below_threshold),
        key=lambda r: (r.collection_date, r.measurement_id or 0),
    )
    window_closes = admission + timedelta(days=rules.window_last_day)
    repeat = rules.repeat_near_cutoff and today <= window_closes and bool(below) \
        and all(r.near_cutoff for r in below)
    if below:
        first = next((r for r in below if not r.near_cutoff), below[0])
        day = facts[id(first)].icu_day
        measure_reason = (
            f"mHLA-DR {_fmt(first.abc or 0.0)} AB/C < {threshold} on ICU day {day} "
            f"(QC {first.qc_status}{', approved' if first.review == 'approve' else ''})" + _call(first)
        )
        if repeat:
            measure_reason += (f"; a repeat sample is asked for while the window is open (until "
                               f"{window_closes.isoformat()}; setting repeat_near_cutoff)")
        shown: ResultFacts | None = first
    else:
        shown = _lowest_decisive(in_win) or _latest(in_win) or _latest(usable)
        measure_reason = _no_value_reason(in_win, admission, today, rules, decided=bool(failed))

    fields = _shown_fields(shown, admission)
    if failed:
        return Decision(patient_id, "not_eligible", tuple(failed + met + [measure_reason]), *fields)
    if below and not repeat:
        return Decision(patient_id, "eligible", tuple(met + [measure_reason, _next_for_eligible(patient)]), *fields)
    if today <= window_closes or any(awaits_decision(r) for r in in_win):
        return Decision(patient_id, "pending", tuple(met + [measure_reason]), *fields)
    return Decision(patient_id, "not_eligible", tuple(met + [measure_reason]), *fields)


def _call(result: ResultFacts) -> str:
    """How sure the value is to lie under the cut-off, when it is near it (issue 18)."""
    if not result.near_cutoff or result.p_below is None:
        return ""
    return f"; near the cut-off: P(true AB/C below it) {result.p_below:.2f}"


def _no_value_reason(in_win: Sequence[ResultFacts], admission: date, today: date, rules: Rules, *,
                     decided: bool) -> str:
    """Why the measurement criterion is not (yet) met (``decided``: a clinical criterion has
    already failed, so nothing waits on the measurements)."""
    first = admission + timedelta(days=rules.window_first_day)
    last = admission + timedelta(days=rules.window_last_day)
    threshold = _fmt(rules.abc_threshold)
    waiting = [r for r in in_win if awaits_decision(r)]
    parts: list[str] = []
    if waiting:
        kinds = sorted({"calibration (the bead tube of its day)" if r.qc_status == "pending_calibration"
                        else "technician review (mhladr review list)" for r in waiting})
        parts.append(f"{len(waiting)} in-window result(s) await {' / '.join(kinds)}")
    decisive = [r for r in in_win if is_decisive(r)]
    if decisive:
        low = min(r.abc for r in decisive if r.abc is not None)
        parts.append(f"lowest decisive in-window mHLA-DR {_fmt(low)} AB/C >= {threshold}")
    if today < first:
        parts.append(f"window (ICU day {rules.window_first_day}-{rules.window_last_day}) opens {first.isoformat()}")
    elif today <= last:
        parts.append(f"window open until {last.isoformat()}"
                     + ("" if waiting or decisive else f"; no decisive mHLA-DR < {threshold} yet"))
    elif waiting and not decided:
        parts.append(f"window closed on {last.isoformat()}: the decision waits for the result(s) above")
    elif waiting:
        parts.append(f"window closed on {last.isoformat()}")
    else:
        parts.append(f"window closed on {last.isoformat()}"
                     + ("" if decisive else f" without a decisive mHLA-DR < {threshold}"))
    return "; ".join(parts)


def _next_for_eligible(patient: PatientFacts) -> str:
    """What an eligible patient waits for: consent, unless already randomized."""
    if patient.randomized_at is not None:
        return f"randomized on {as_date(patient.randomized_at).isoformat()}"
    return "awaiting consent"


def _lowest_decisive(results: Sequence[ResultFacts]) -> ResultFacts | None:
    decisive = [r for r in results if is_decisive(r)]
    return min(decisive, key=lambda r: r.abc or 0.0) if decisive else None


def _latest(results: Sequence[ResultFacts]) -> ResultFacts | None:
    if not results:
        return None
    return max(results, key=lambda r: (r.collection_date, r.measurement_id or 0))


def _shown_fields(
    shown: ResultFacts | None, admission: date | None
) -> tuple[int | None, float | None, int | None, str | None]:
    """(measurement_id, abc, icu_day, file) of the result a decision shows."""
    if shown is None:
        return None, None, None, None
    day = icu_day(admission, shown.collection_date) if admission is not None else None
    abc = shown.abc if shown.qc_status != "fail" else None
    return shown.measurement_id, abc, day, shown.file
