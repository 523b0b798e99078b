"""Issue 18 on the console's review page: the call near the cut-off, % HLA-DR+ monocytes and
draw / acquisition / delay; withheld from a blinded role like the value itself."""

from __future__ import annotations

from tests.console_fixtures import BLINDED_FILE, RunningConsole


def test_review_page_shows_the_call_positivity_and_preanalytics(console: RunningConsole) -> None:
    target = console.measurement_of("PT-0045_D05_HLADR.fcs")
    with console.login("tech") as (client, _):
        page = client.get(f"/reviews/{target}").text
    assert "P(below cut-off)" in page and "HLA-DR+ monocytes" in page
    assert "draw to acquisition" in page and "acquired" in page
    with console.store() as store:
        meas = next(m.measurement for m in store.measurements.list(include_blinded=True) if m.id == target)
    assert meas.p_below_threshold is not None and f"{meas.p_below_threshold:.3f}" in page
    assert meas.preanalytics["acquired"].replace("T", " ")[:16] in page


def test_blinded_role_sees_no_call(console: RunningConsole) -> None:
    target = console.measurement_of(BLINDED_FILE)
    with console.store() as store:
        meas = next(m.measurement for m in store.measurements.list(include_blinded=True) if m.id == target)
    with console.login("tech") as (client, _):
        page = client.get(f"/reviews/{target}").text
    assert "P(below cut-off)" in page and f"{meas.p_below_threshold:.3f}" not in page
    assert meas.hla_dr_positive_percent is None or f"{meas.hla_dr_positive_percent:.1f} %" not in page
