"""The lab console and the Prefect UI in a real browser: Debian's Chromium (/usr/bin/chromium,
installed by .ci/run) driven by Playwright, one browser per session.

A technician signs in, opens a review, sees the figures drawn, approves with a reason and sees
the screening change; an investigator sees the screening without post-randomization values and
cannot decide; the Prefect UI's dashboard and deployments load from the server that serves
them. Each page is saved as a screenshot in a temporary folder (``MHLADR_SCREENSHOTS`` to
choose it); the folder is printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console_fixtures import BLINDED_FILE, PEOPLE, RunningConsole

CHROMIUM = Path(os.environ.get("MHLADR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
PREFECT_ERRORS = ("Unable to connect", "Something went wrong", "Oops")


@pytest.fixture(scope="module")
def browser() -> Iterator["object"]:
    """Chromium, once for the session's browser tests (all in this module). Closed when they
    end: while Playwright's sync API is open this thread counts as running an event loop, and
    Prefect's sync calls in later tests would then hand back coroutines instead of acting."""
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium before the tests")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ["MHLADR_SCREENSHOTS"]) if os.environ.get("MHLADR_SCREENSHOTS") \
        else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder


def new_page(browser, width: int = 1280, height: int = 900):  # noqa: ANN001, ANN201
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(20_000)
    return page


def sign_in(page, console: RunningConsole, name: str) -> None:  # noqa: ANN001
    page.goto(console.url + "/")
    assert "/login" in page.url
    page.fill("input[name=user]", name)
    page.fill("input[name=password]", PEOPLE[name][1])
    page.click("button[type=submit]")


def shoot(page, folder: Path, name: str) -> None:  # noqa: ANN001
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def drawn_figures(page) -> dict[str, int]:  # noqa: ANN001
    """Each figure's caption -> the number of density images and marks drawn with a size."""
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('figure')).map(f => [
        f.querySelector('figcaption') ? f.querySelector('figcaption').textContent : '',
        Array.from(f.querySelectorAll('svg image, svg circle, svg polyline, svg polygon'))
             .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length]))""")


def test_a_technician_reviews_with_the_figures_and_sees_the_screening_change(
        browser, console: RunningConsole, screenshots: Path) -> None:  # noqa: ANN001
    target = console.measurement_of("PT-0043_D06_HLADR.fcs")
    page = new_page(browser)
    sign_in(page, console, "tech")
    assert page.url == console.url + "/files"                   # a technician's start page
    page.click("nav a[href='/']")
    assert page.locator("h1").inner_text().startswith("Review queue")
    shoot(page, screenshots, "01_review_queue")
    page.click(f"a[href='/reviews/{target}']")                                            # click 1
    assert page.url.endswith(f"/reviews/{target}")
    figures = drawn_figures(page)
    assert figures.get("Gates", 0) > 3 and figures.get("Bead calibration", 0) > 3, figures
    assert page.locator("textarea[name=reason]").evaluate("e => e === document.activeElement")
    shoot(page, screenshots, "02_review")
    page.keyboard.type("smear checked: monocyte cluster clear")
    assert page.locator("input[name=password][type=password]").count() == 1    # the signature field
    page.fill("input[name=password]", "not my password")
    page.click("button[value=approve]")
    assert "signature refused: wrong password" in page.locator(".notice.error").inner_text()
    assert page.locator("textarea[name=reason]").input_value() == "smear checked: monocyte cluster clear"
    assert page.locator("input[name=password]").input_value() == ""            # never sent back
    with console.store() as store:
        assert store.measurements.reviews(target) == []                         # nothing recorded
    page.fill("input[name=password]", PEOPLE["tech"][1])
    page.click("button[value=approve]")                                                   # click 2
    notice = page.locator(".notice.ok").inner_text()
    assert f"Measurement {target} of PT-0043 approved by tech" in notice and "PT-0043 is now eligible" in notice
    assert page.locator(f"a[href='/reviews/{target}']").count() == 0
    shoot(page, screenshots, "03_decided")
    page.click("nav a[href='/screening']")
    row = page.locator("tr", has=page.locator("a[href='/patients/PT-0043']"))
    assert row.locator(".badge").inner_text() == "eligible"
    shoot(page, screenshots, "04_screening")
    page.click("a[href='/patients/PT-0043']")
    assert drawn_figures(page)  # the trend chart
    assert "cut-off 8,000 AB/C" in page.content() and "ICU day 5-10 window" in page.content()
    shoot(page, screenshots, "05_patient")
    page.click("a[href^='/reports/measurements/']")
    assert "PT-0043" in page.locator("h1").inner_text()
    shoot(page, screenshots, "06_report")
    page.goto(console.url + "/beads")
    assert page.locator("figure svg").count() >= 4
    shoot(page, screenshots, "07_beads")
    page.goto(console.url + f"/reviews/{console.measurement_of(BLINDED_FILE)}")       # after randomization
    gates = page.locator("figure", has=page.locator("figcaption", has_text="Gates")).inner_html()
    assert "monocytes (" in gates and "monocyte PE" not in gates                # the PE histogram is withheld
    assert page.locator(".decide dd.big").inner_text() == "withheld"
    shoot(page, screenshots, "08_review_blinded")
    page.goto(console.url + f"/reviews/{target}")
    assert page.locator("input[name=supersede]").count() == 1                   # a second decision is explicit
    signature = page.locator(".decisions .signature").inner_text()
    assert signature.startswith("Signed by tech, ") and signature.endswith("UTC: reviewed: approved")
    page.set_viewport_size({"width": 800, "height": 1100})                      # a tablet held upright
    shoot(page, screenshots, "09_review_decided_tablet")
    page.close()


def test_an_investigator_sees_screening_without_post_randomization_values_and_cannot_decide(
        browser, console: RunningConsole, screenshots: Path) -> None:  # noqa: ANN001
    blinded = console.measurement_of(BLINDED_FILE)
    with console.store() as store:
        hidden = f"{store.measurements.get(blinded).abc:,.0f}"
    page = new_page(browser, 1024, 768)
    sign_in(page, console, "inv")
    assert page.url == console.url + "/screening"
    assert page.locator("nav a[href='/']").count() == 0 and page.locator("nav a[href='/beads']").count() == 0
    assert hidden not in page.content()
    shoot(page, screenshots, "10_investigator_screening")
    page.click("a[href='/patients/PT-0047']")
    assert hidden not in page.content() and "withheld from your role" in page.content()
    assert page.locator("a[href^='/reviews/']").count() == 0
    shoot(page, screenshots, "11_investigator_patient")
    response = page.goto(console.url + f"/reviews/{blinded}")
    assert response.status == 403 and "may not review" in page.content()
    assert page.locator("button[value=approve]").count() == 0
    shoot(page, screenshots, "12_investigator_refused")
    page.close()


def prefect_sign_in(page, ui_url: str, auth: str) -> None:  # noqa: ANN001
    """Open the locked Prefect UI with its basic-auth string (``MHLADR_HOME/prefect/auth``)."""
    page.goto(ui_url + "/login")
    page.locator("input").first.fill(auth)
    page.get_by_role("button", name="Login").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_the_prefect_ui_is_locked(browser, prefect_server, screenshots: Path) -> None:  # noqa: ANN001
    """Without the server's secret the UI shows its sign-in form and no flow, run or deployment."""
    page = new_page(browser)
    page.goto(prefect_server.ui_url + "/deployments")
    page.wait_for_url(lambda url: "/login" in url)
    page.wait_for_timeout(2000)
    text = page.locator("body").inner_text()
    assert "Login" in text and "mhladr-" not in text and "review" not in text.lower()
    shoot(page, screenshots, "prefect_locked")
    page.locator("input").first.fill("mhladr:a-guess")
    page.get_by_role("button", name="Login").click()
    page.wait_for_timeout(2000)
    assert "/login" in page.url and "mhladr-" not in page.locator("body").inner_text()
    shoot(page, screenshots, "prefect_wrong_secret")
    page.close()


@pytest.mark.parametrize("path", ["/dashboard", "/deployments", "/v2/dashboard"])
def test_the_prefect_ui_loads_from_its_own_server(browser, prefect_server, screenshots: Path,  # noqa: ANN001
                                                  path: str) -> None:
    page = new_page(browser)
    prefect_sign_in(page, prefect_server.ui_url, prefect_server.auth)
    page.goto(prefect_server.ui_url + path)
    page.wait_for_load_state("load")
    page.wait_for_timeout(3000)                 # the UI's first API calls (the errors show after them)
    text = page.locator("body").inner_text()
    assert text.strip() and not any(error in text for error in PREFECT_ERRORS), text[:500]
    shoot(page, screenshots, "prefect_" + path.strip("/").replace("/", "_"))
    page.close()


def test_an_admin_reads_the_audit_review(browser, console: RunningConsole, screenshots: Path) -> None:  # noqa: ANN001
    page = new_page(browser)
    sign_in(page, console, "adm")
    page.click("nav a[href='/audit']")
    assert page.locator("h1").inner_text() == "Audit-trail review"
    counts = page.locator("table.counts").inner_text()
    assert "Refused sign-ins" in counts and "Actions outside lab hours" in counts
    assert page.locator("input[name=password][type=password]").count() == 1    # signing the review
    shoot(page, screenshots, "10_audit_review")
    page.close()


def test_an_expired_session_lands_on_sign_in_with_its_reason(browser, console: RunningConsole,  # noqa: ANN001
                                                             screenshots: Path) -> None:
    """A session idle past ``console_idle_minutes`` (its cookie's last activity 16 min ago) sends
    the browser to the sign-in page with one line saying why; signing in again works."""
    import time

    from app.console.sessions import COOKIE, Sessions, signing_key

    with console.store() as store:
        generation = store.users.get("tech").generation
    idle_since = time.time() - 16 * 60
    cookie, _ = Sessions(signing_key(console.home), clock=lambda: idle_since).issue("tech", generation)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": COOKIE, "value": cookie, "url": console.url}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(console.url + "/screening")
    assert "/login" in page.url and "ended=idle" in page.url
    alert = page.locator("[role=alert]")
    assert alert.count() == 1
    assert alert.inner_text().strip() == "Your session ended after 15 min without activity: please sign in again."
    shoot(page, screenshots, "20_session_expired")
    page.fill("input[name=user]", "tech")
    page.fill("input[name=password]", PEOPLE["tech"][1])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/screening"))
    assert page.locator("h1").first.inner_text().strip()
    page.click("a[href='/password']")                    # the name in the header: change my password
    assert page.locator("h1").inner_text().strip() == "Change my password"
    assert page.locator("input[type=password]").count() == 3
    shoot(page, screenshots, "21_change_my_password")
    context.close()
