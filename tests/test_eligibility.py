"""Table-driven tests of the pure screening rules (pipeline.eligibility)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from pipeline.config import load_settings
from pipeline.eligibility import (NO_REGISTRY_ENTRY, PatientFacts, ResultFacts, Rules, below_threshold,
                                  evaluate, icu_day, in_window, is_blinded)

ADM = date(2026, 3, 1)                      # ICU day 0; window days 5..10 = 03-06 .. 03-11
RULES = Rules()


def patient(**kw: object) -> PatientFacts:
    base: dict[str, object] = dict(patient_id="PT-1", icu_admission=ADM, sofa_24h=8,
                                   mechanical_ventilation=True, exclusion="", randomized_at=None)
    base.update(kw)
    return PatientFacts(**base)  # type: ignore[arg-type]


def res(day: int, abc: float | None, qc: str = "pass", review: str | None = None, mid: int = 1) -> ResultFacts:
    return ResultFacts(date.fromordinal(ADM.toordinal() + day), abc, qc, review, mid, f"f{mid}")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("admission", "collection", "expected"),
    [
        (date(2026, 3, 1), date(2026, 3, 1), 0),
        (date(2026, 3, 1), date(2026, 3, 6), 5),
        (datetime(2026, 3, 1, 23, 55), date(2026, 3, 2), 1),   # calendar days, not 24 h spans
        (datetime(2026, 2, 27, 2, 0), date(2026, 3, 1), 2),    # across a month end
        (date(2026, 3, 1), date(2026, 2, 28), -1),
    ],
)
def test_icu_day_counts_calendar_days_from_admission(admission, collection, expected):
    assert icu_day(admission, collection) == expected


@pytest.mark.parametrize(("day", "inside"), [(4, False), (5, True), (10, True), (11, False), (None, None)])
def test_window_is_inclusive(day, inside):
    assert in_window(day, RULES) is inside


CASES = [
    # (name, patient kwargs, results, today offset from admission, status, reason fragment)
    ("eligible on a pass below threshold", {}, [res(6, 6500.0)], 6, "eligible", "6,500 AB/C < 8,000 on ICU day 6"),
    ("eligible on day 5 boundary", {}, [res(5, 7999.0)], 5, "eligible", "ICU day 5"),
    ("eligible on day 10 boundary", {}, [res(10, 3000.0)], 12, "eligible", "ICU day 10"),
    ("day 4 value does not count", {}, [res(4, 3000.0)], 6, "pending", "window open until 2026-03-11"),
    ("day 11 value does not count", {}, [res(11, 3000.0)], 11, "not_eligible", "window closed on 2026-03-11"),
    ("value at threshold is not below", {}, [res(6, 8000.0)], 6, "pending", "8,000 AB/C >= 8,000"),
    ("high value keeps window open", {}, [res(6, 12000.0)], 9, "pending", "window open"),
    ("later low value after a high one", {}, [res(6, 12000.0, mid=1), res(8, 7000.0, mid=2)], 8, "eligible", "7,000"),
    ("window closed after only high values", {}, [res(6, 12000.0)], 11, "not_eligible", "window closed"),
    ("no results, window not yet open", {}, [], 2, "pending", "opens 2026-03-06"),
    ("no results, window closed", {}, [], 11, "not_eligible", "window closed"),
    ("QC fail never counts", {}, [res(6, 3000.0, "fail")], 7, "pending", "window open"),
    ("QC fail never counts after closure", {}, [res(6, 3000.0, "fail")], 11, "not_eligible", "window closed"),
    ("review approved counts", {}, [res(6, 5000.0, "review", "approve")], 7, "eligible", "approved"),
    ("review rejected does not count", {}, [res(6, 5000.0, "review", "reject")], 11, "not_eligible", "window closed"),
    ("undecided review keeps pending", {}, [res(6, 5000.0, "review")], 7, "pending", "await technician review"),
    ("undecided review keeps pending after closure", {}, [res(6, 5000.0, "review")], 12, "pending",
     "await technician review"),
    ("awaiting calibration keeps pending", {}, [res(6, None, "pending_calibration")], 12, "pending",
     "await calibration"),
    ("SOFA below 6 fails at once", {"sofa_24h": 5}, [res(6, 3000.0)], 6, "not_eligible", "SOFA 24 h 5 < 6"),
    ("SOFA 6 is enough", {"sofa_24h": 6}, [res(6, 3000.0)], 6, "eligible", "SOFA 24 h 6 >= 6"),
    ("not ventilated fails at once", {"mechanical_ventilation": False}, [], 1, "not_eligible",
     "not mechanically ventilated"),
    ("exclusion fails at once", {"exclusion": "pregnancy"}, [res(6, 3000.0)], 6, "not_eligible",
     "exclusion: pregnancy"),
    ("post-randomization value ignored", {"randomized_at": datetime(2026, 3, 7, 10, 0)},
     [res(8, 3000.0)], 9, "pending", "window open"),
    ("same-day sample counts as screening sample", {"randomized_at": date(2026, 3, 7)},
     [res(6, 3000.0)], 9, "eligible", "ICU day 6"),
]


@pytest.mark.parametrize(("name", "kw", "results", "offset", "status", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_rules_table(name, kw, results, offset, status, fragment):
    today = date.fromordinal(ADM.toordinal() + offset)
    decision = evaluate("PT-1", patient(**kw), results, today, RULES)
    assert decision.status == status, decision.reasons
    assert any(fragment in reason for reason in decision.reasons), decision.reasons


def test_every_criterion_has_a_reason():
    decision = evaluate("PT-1", patient(), [res(6, 6500.0)], date(2026, 3, 7), RULES)
    text = " | ".join(decision.reasons)
    for fragment in ("SOFA 24 h 8 >= 6", "mechanically ventilated", "no exclusion", "< 8,000", "awaiting consent"):
        assert fragment in text
    assert decision.measurement_id == 1 and decision.icu_day == 6
    assert decision.abc == pytest.approx(6500.0)


def test_eligible_shows_the_first_decisive_value_below_threshold():
    results = [res(9, 4000.0, mid=3), res(7, 7500.0, mid=2), res(6, 9000.0, mid=1)]
    decision = evaluate("PT-1", patient(), results, date(2026, 3, 10), RULES)
    assert decision.status == "eligible"
    assert decision.measurement_id == 2 and decision.icu_day == 7


def test_patient_without_registry_entry_is_pending():
    decision = evaluate("PT-9", None, [res(6, 3000.0)], date(2026, 3, 20), RULES)
    assert decision.status == "pending"
    assert decision.reasons == (NO_REGISTRY_ENTRY,)
    assert decision.icu_day is None and decision.abc == pytest.approx(3000.0)


def test_threshold_and_window_are_configurable():
    rules = Rules(abc_threshold=5000.0, window_first_day=3, window_last_day=7)
    assert evaluate("PT-1", patient(), [res(4, 6000.0)], date(2026, 3, 6), rules).status == "pending"
    assert evaluate("PT-1", patient(), [res(4, 4000.0)], date(2026, 3, 6), rules).status == "eligible"
    assert evaluate("PT-1", patient(), [res(4, 6000.0)], date(2026, 3, 9), rules).status == "not_eligible"


def test_qc_fail_value_is_not_shown_as_abc():
    decision = evaluate("PT-1", patient(), [res(6, 3000.0, "fail")], date(2026, 3, 7), RULES)
    assert decision.abc is None


@pytest.mark.parametrize(
    ("collection", "randomized", "blinded"),
    [(date(2026, 3, 8), None, False), (date(2026, 3, 8), date(2026, 3, 7), True),
     (date(2026, 3, 7), datetime(2026, 3, 7, 9, 0), False), (date(2026, 3, 6), date(2026, 3, 7), False)],
)
def test_blinding_boundary(collection, randomized, blinded):
    assert is_blinded(collection, randomized) is blinded


@pytest.mark.parametrize(
    ("abc", "qc", "expected"),
    [(7999.0, "pass", True), (8000.0, "pass", False), (12000.0, "review", False), (3000.0, "review", True),
     (3000.0, "fail", None), (None, "pass", None)],
)
def test_below_threshold_is_strict_and_unknown_for_failed_or_missing_values(abc, qc, expected):
    assert below_threshold(abc, qc, RULES) is expected


def test_rules_from_settings_take_the_configured_threshold_and_window(tmp_path):
    settings = load_settings(env={"MHLADR_HOME": str(tmp_path), "MHLADR_ABC_THRESHOLD": "5000",
                                  "MHLADR_WINDOW_FIRST_DAY": "3", "MHLADR_WINDOW_LAST_DAY": "7"})
    assert settings.rules() == Rules(abc_threshold=5000.0, window_first_day=3, window_last_day=7)


def test_a_randomized_patient_reads_randomized_not_awaiting_consent():
    randomized = patient(randomized_at=datetime(2026, 3, 8, 14, 0))
    decision = evaluate("PT-1", randomized, [res(6, 3000.0)], date(2026, 3, 9), RULES)
    assert decision.status == "eligible" and decision.reasons[-1] == "randomized on 2026-03-08"
    assert "awaiting consent" not in decision.reasons
    assert evaluate("PT-1", patient(), [res(6, 3000.0)], date(2026, 3, 9), RULES).reasons[-1] == "awaiting consent"


@pytest.mark.parametrize(("kw", "results", "status", "says", "never"), [
    ({}, [res(6, 5000.0, "review")], "pending",
     "1 in-window result(s) await technician review (mhladr review list); window closed on 2026-03-11: the decision "
     "waits for the result(s) above", "without a decisive"),
    ({}, [res(6, None, "pending_calibration")], "pending", "window closed on 2026-03-11: the decision waits",
     "without a decisive"),
    ({"sofa_24h": 4}, [res(6, None, "pending_calibration")], "not_eligible", "window closed on 2026-03-11", "waits"),
    ({}, [res(6, 12000.0)], "not_eligible", "lowest decisive in-window mHLA-DR 12,000 AB/C >= 8,000; window closed "
     "on 2026-03-11", "without a decisive"),
    ({}, [], "not_eligible", "window closed on 2026-03-11 without a decisive mHLA-DR < 8,000", "waits"),
])
def test_reasons_after_the_window_do_not_contradict_the_status(kw, results, status, says, never):
    decision = evaluate("PT-1", patient(**kw), results, date(2026, 3, 13), RULES)
    text = "; ".join(decision.reasons)
    assert decision.status == status and says in text and never not in text, text
