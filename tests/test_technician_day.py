"""A technician's day under ``mhladr serve --inbox`` (issue 17): files processed as they land (moves
to ``processed/`` and ``quarantine/`` with a ``.reason.txt``), the Files page and ``/api/files``,
the audited reprocess of a quarantined file once it is replaced, and a decision that shows on
the review page and in the report; in Chromium where a person would click.

One ``serve`` for the module, on its own home, using the session's Prefect server
(``PREFECT_API_URL``); every tube is QC ``review`` (``MHLADR_MONOCYTES_REVIEW_BELOW`` above any
count) so that each needs a technician.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.prefect_harness import cli_env
from tests.test_console_browser import browser, new_page, screenshots, shoot  # noqa: F401 (fixtures)
from tests.test_serve import Served, finish, start

PEOPLE = {"tech": ("technician", "tech-day-pass"), "inv": ("investigator", "inv-day-pass")}
BEADS = ("BEADS_2026-03-12_lotA_CANTO.fcs", "BEADS_2026-03-13_lotA_CALIBUR.fcs",
         "BEADS_2026-03-16_lotB_CANTO.fcs", "BEADS_2026-03-17_lotB_CALIBUR.fcs")


@dataclass
class Day:
    served: Served
    inbox: Path
    data: Path

    @property
    def url(self) -> str:
        return self.served.state["console"]

    def login(self, name: str) -> tuple[httpx.Client, str]:
        client = httpx.Client(base_url=self.url, timeout=60.0)
        response = client.post("/api/login", json={"user": name, "password": PEOPLE[name][1]})
        assert response.status_code == 200, response.text
        return client, response.json()["csrf_token"]

    def drop(self, name: str, content: bytes | None = None) -> Path:
        """Copy a sample file into the inbox the way a cytometer export lands (written, then renamed)."""
        tmp = self.inbox / f".{name}.part"
        tmp.write_bytes(content if content is not None else (self.data / name).read_bytes())
        os.replace(tmp, self.inbox / name)
        return self.inbox / name


def os_login() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def wait_for(what: str, check, timeout: float = 90.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def day(prefect_server, tmp_path_factory: pytest.TempPathFactory, data_samples: Path) -> Iterator[Day]:  # noqa: ANN001
    from pipeline.config import load_settings
    from pipeline.store import open_store

    root = tmp_path_factory.mktemp("technician-day")
    home, inbox = root / "home", root / "inbox"
    inbox.mkdir()
    shutil.copy(data_samples / "lots.csv", inbox / "lots.csv")
    shutil.copy(data_samples / "registry.csv", root / "registry.csv")
    with open_store(load_settings(env={"MHLADR_HOME": str(home)})) as store:
        store.users.add(os_login(), "admin", "os-login-pass", actor="test-setup")
        for name, (role, password) in PEOPLE.items():
            store.users.add(name, role, password, actor="test-setup")
    env = cli_env(prefect_server.url, home, LOGNAME=os_login(), MHLADR_MONOCYTES_REVIEW_BELOW="100000000")
    served = start(home, env, root, "--inbox", str(inbox), "--registry", str(root / "registry.csv"), "--grace", "2")
    try:
        yield Day(served, inbox, data_samples)
    finally:
        finish(served)


def files_of(client: httpx.Client, **params: str) -> dict[str, dict]:
    response = client.get("/api/files", params=params)
    assert response.status_code == 200, response.text
    return {row["file"]: row for row in response.json()}


def latest_artifact(server_url: str, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.server import connected
    with connected(server_url), get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return str(max(found, key=lambda a: a.created).data)


def test_files_are_processed_as_they_land_and_listed_for_the_day(day: Day, prefect_server) -> None:  # noqa: ANN001
    for name in BEADS:
        day.drop(name)
    wait_for("the bead tubes in processed/", lambda: all((day.inbox / "processed" / b).is_file() for b in BEADS))
    day.drop("PT-0042_D07_HLADR.fcs")
    wait_for("the sample in processed/", lambda: (day.inbox / "processed" / "PT-0042_D07_HLADR.fcs").is_file())
    client, _ = day.login("tech")
    rows = files_of(client)
    assert {rows[b]["status"] for b in BEADS} == {"calibrated"}
    sample = rows["PT-0042_D07_HLADR.fcs"]
    assert sample["status"] == "measured" and sample["qc"] == "review" and sample["patient_id"] == "PT-0042"
    assert sample["next"].startswith("QC review") and sample["measurement_id"] is not None
    assert set(sample) >= {"id", "file", "sha256", "kind", "status", "qc", "reasons", "next", "patient_id", "landed_at"}
    reports = latest_artifact(prefect_server.url, "batch-reports")          # links a browser opens
    assert f"({day.url}/reports/measurements/{sample['measurement_id']})" in reports and "file://" not in reports
    from flows.inbox import watched
    assert watched(day.inbox) and not watched(day.data)       # a scheduled run of the folder leaves it alone
    assert files_of(client, date="2001-01-01") == {}
    assert client.get("/api/files", params={"date": "yesterday"}).status_code == 422
    inv, _ = day.login("inv")
    assert inv.get("/api/files").status_code == 403                        # investigators do not handle files
    assert httpx.get(day.url + "/api/files").status_code == 401


def test_a_truncated_file_is_quarantined_with_its_reason_and_reprocessed_once_replaced(day: Day) -> None:
    name = "PT-0045_D05_HLADR.fcs"
    full = (day.data / name).read_bytes()
    day.drop(name, full[: len(full) // 3])
    quarantined = day.inbox / "quarantine" / name
    wait_for("the truncated file in quarantine/", quarantined.is_file)
    reason = (day.inbox / "quarantine" / f"{name}.reason.txt").read_text()
    assert "status: rejected" in reason and "truncated" in reason and "next: copy the complete file" in reason
    client, csrf = day.login("tech")
    row = files_of(client)[name]
    assert row["status"] == "quarantined" and row["reprocessable"] and row["patient_id"] == "PT-0045"
    assert any("truncated" in r for r in row["reasons"]) and row["next"].startswith("copy the complete file")
    patient = client.get("/patients/PT-0045")                  # the patient page lists the rejected tube
    assert patient.status_code == 200 and "Rejected tubes" in patient.text and name in patient.text
    url = f"/api/files/{row['id']}/reprocess"
    assert client.post(url, json={"reason": "complete copy"}).status_code == 403          # no CSRF token
    inv, inv_csrf = day.login("inv")
    assert inv.post(url, json={"reason": "x"}, headers={"X-CSRF-Token": inv_csrf}).status_code == 403
    quarantined.write_bytes(full)                                                        # the fixed file
    done = client.post(url, json={"reason": "complete copy from the cytometer PC"}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "measured" and Path(done.json()["file"]).parent.name == "processed"
    assert (day.inbox / "processed" / name).is_file() and not quarantined.exists()
    rows = client.get("/api/files").json()
    same = [r for r in rows if r["file"] == name]
    assert sorted(r["status"] for r in same) == ["measured", "quarantined"]      # the rejection stays on record
    old = next(r for r in same if r["status"] == "quarantined")
    assert not old["reprocessable"] and any("reprocessed by tech" in r for r in old["reasons"])
    again = client.post(url, json={"reason": "again"}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409
    with open_audit(day) as entries:
        assert any(e.actor == "tech" and e.action == "update_file" and "complete copy" in json.dumps(e.after)
                   for e in entries)


class open_audit:  # noqa: N801 - a context manager read like a function
    def __init__(self, day: Day) -> None:
        from pipeline.config import load_settings
        from pipeline.store import open_store
        self.store = open_store(load_settings(env={"MHLADR_HOME": str(day.served.home)}))

    def __enter__(self) -> list:
        return self.store.audit.entries()

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def click_away(page, link, url: str) -> None:  # noqa: ANN001
    """Click a link of the self-refreshing Files page; a click that lands just as the page reloads
    itself is lost (the reload wins), so it is clicked again, as a person would."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        link.click()
        try:
            page.wait_for_url(url, timeout=8_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the click never reached {url}")


def sign_in(page, day: Day, name: str) -> None:  # noqa: ANN001
    page.goto(day.url + "/files")
    page.fill("input[name=user]", name)
    page.fill("input[name=password]", PEOPLE[name][1])
    page.click("button[type=submit]")
    page.wait_for_url("**/files")


def test_the_files_page_shows_a_landing_file_without_a_reload_then_a_decision_on_the_record(
        day: Day, browser, screenshots: Path) -> None:  # noqa: ANN001, F811
    page = new_page(browser)
    sign_in(page, day, "tech")
    shoot(page, screenshots, "day_01_files")
    name = "PT-0043_D06_HLADR.fcs"
    day.drop(name)
    row = page.locator("tr", has=page.locator("td", has_text=name))
    row.locator(".badge", has_text="measured").wait_for(timeout=90_000)     # the page refreshed itself
    shoot(page, screenshots, "day_02_files_landed")
    click_away(page, row.locator("a.button", has_text="Review"), "**/reviews/*")         # click 1
    page.fill("textarea[name=reason]", "smear checked: monocytes clearly apart")
    page.fill("input[name=password]", PEOPLE["tech"][1])                                # the signature
    page.click("button[value=approve]")                                                 # click 2
    page.wait_for_url("**/?decided=*")
    mid = int(page.url.rsplit("=", 1)[1])
    page.goto(day.url + f"/reviews/{mid}")
    decision = page.locator("li.decision").inner_text()
    assert "approved by tech at" in decision and "UTC" in decision and "smear checked" in decision
    shoot(page, screenshots, "day_03_review_decided")
    page.goto(day.url + f"/reports/measurements/{mid}")
    report = page.locator("li.decision").inner_text()
    assert "approved by tech at" in report and "UTC" in report and "smear checked" in report
    assert "Signed by tech, " in report and " UTC: reviewed: approved" in report       # the signature's manifestation
    shoot(page, screenshots, "day_04_report_decided")
    page.close()


def test_a_quarantined_file_is_reprocessed_from_the_files_page(day: Day, browser, screenshots: Path) -> None:  # noqa: ANN001, F811
    name = "PT-0047_D02_HLADR.fcs"
    full = (day.data / name).read_bytes()
    day.drop(name, full[:5000])
    quarantined = day.inbox / "quarantine" / name
    wait_for("the truncated file in quarantine/", quarantined.is_file)
    page = new_page(browser)
    sign_in(page, day, "tech")
    row = page.locator("tr", has=page.locator("td", has_text=name))
    assert row.locator(".badge", has_text="quarantined").count() == 1
    assert "truncated" in row.inner_text() and "Next:" in row.inner_text()
    shoot(page, screenshots, "day_05_files_quarantined")
    page.click("nav a[href='/']")
    assert "need a person" in page.locator(".notice.warn").inner_text()                # seen from the queue too
    page.click(".notice.warn a[href='/files']")
    quarantined.write_bytes(full)
    row.locator("input[name=reason]").fill("complete copy put back")
    row.locator("button", has_text="Reprocess").click()                                 # click 1
    notice = page.locator(".notice.ok").inner_text()
    assert "reprocessed" in notice and "measured" in notice
    assert (day.inbox / "processed" / name).is_file()
    shoot(page, screenshots, "day_06_files_reprocessed")
    page.close()


def test_a_gate_correction_changes_the_abc_shown_and_keeps_both_versions(day: Day, browser, screenshots: Path) -> None:  # noqa: ANN001, F811
    client, _ = day.login("tech")
    row = files_of(client)["PT-0042_D07_HLADR.fcs"]
    mid = row["measurement_id"]
    page = new_page(browser)
    sign_in(page, day, "tech")
    page.goto(day.url + f"/reviews/{mid}")
    before = page.locator(".decide dd.big").inner_text()
    page.click("details.gate-edit summary")                                             # click 1
    text = page.locator("textarea[name=vertices]").input_value()
    xy = [tuple(float(v) for v in line.split(",")) for line in text.splitlines()]
    cx, cy = sum(x for x, _ in xy) / len(xy), sum(y for _, y in xy) / len(xy)
    page.fill("textarea[name=vertices]", "\n".join(f"{cx + 0.6 * (x - cx):.1f}, {cy + 0.6 * (y - cy):.1f}"
                                                   for x, y in xy))                    # the vertices moved in
    page.click("button[value=preview]")                                                 # click 2
    preview = page.locator(".preview-abc").inner_text()
    assert preview != before
    assert page.locator(".proposal figure svg").count() == 1
    shoot(page, screenshots, "day_07_gate_preview")
    assert page.locator(".decide dd.big").inner_text() == before                        # nothing stored yet
    page.fill("input[name=gate_reason]", "granulocyte tail excluded")
    page.fill("input[name=gate_password]", PEOPLE["tech"][1])                           # the signature
    page.click("button[value=save]")                                                    # click 3
    assert "version 2" in page.locator(".notice.ok").inner_text()
    assert page.locator(".decide dd.big").inner_text() == preview
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 2
    assert versions.nth(0).locator("td").nth(1).inner_text() == before
    assert versions.nth(1).locator("td").nth(1).inner_text() == preview
    shoot(page, screenshots, "day_08_gate_saved")
    page.close()
