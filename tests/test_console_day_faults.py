"""Issue 17's smaller faults on the session's console: the screening page counts randomized
patients apart from "eligible = awaiting consent", gate axes name the marker, QC reasons read as
plain thousands, and the Files page of a day the store knows."""

from __future__ import annotations

import re

from pipeline import formatting as fmt
from tests.console_fixtures import RANDOMIZED, RunningConsole


def badge_count(html: str, label: str) -> int:
    found = re.search(rf'<span class="badge [a-z_]+">(\d+) {label}</span>', html)
    assert found, label
    return int(found.group(1))


def test_randomized_patients_are_counted_apart_from_awaiting_consent(console: RunningConsole) -> None:
    with console.login("tech") as (client, _):
        rows = client.get("/api/screening").json()
        html = client.get("/screening").text
    with console.store() as store:
        randomized = {p.patient_id for p in store.patients.list() if p.randomized_at} & {r["patient_id"] for r in rows}
    assert set(RANDOMIZED) <= randomized
    expected = sum(1 for r in rows if r["status"] == "eligible" and r["patient_id"] not in randomized)
    assert badge_count(html, "eligible") == expected
    assert badge_count(html, "randomized") == len(randomized)
    assert "Eligible = awaiting consent (randomized patients are counted apart)" in html


def test_gate_axes_name_the_marker_and_reasons_read_as_thousands(console: RunningConsole) -> None:
    mid = console.measurement_of("PT-0042_D07_HLADR.fcs")
    with console.login("tech") as (client, _):
        html = client.get(f"/reviews/{mid}").text
    assert "CD14 (" in html and "SSC (" in html and "HLA-DR PE (" in html
    assert "asinh(" not in html
    assert fmt.number(54730.2) == "54,730" and fmt.number(1154.83) == "1,155"
    assert not re.search(r"\d\.\d+e[+-]\d\d", html)                     # no 5.473e+04 anywhere


def test_files_api_lists_the_day_the_files_landed(console: RunningConsole) -> None:
    with console.store() as store:
        landed = store.files.list()[0].first_seen.astimezone().date().isoformat()
    with console.login("tech") as (client, _):
        rows = client.get("/api/files", params={"date": landed}).json()
        page = client.get("/files", params={"date": landed})
    assert {r["file"] for r in rows} >= {"PT-0042_D07_HLADR.fcs", "BEADS_2026-03-12_lotA_CANTO.fcs"}
    assert all(r["landed_at"][:4] == landed[:4] for r in rows)
    assert page.status_code == 200 and 'http-equiv="refresh"' in page.text and "PT-0042_D07_HLADR.fcs" in page.text
