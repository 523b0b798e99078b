"""Console sessions that end (DESIGN.md, Additions 2026-12-07, Console sessions): the idle timeout
(``MHLADR_CONSOLE_IDLE_MINUTES``, here a few seconds on a clock the test moves), the absolute
lifetime, sign-out and ``users disable`` held in the store (a new console on the same home, as
after a restart of ``serve``, still refuses the cookie), each expiry sending the browser to
sign-in with its one-line reason; and the "change my password" page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.console_fixtures import PEOPLE, copy_home

IDLE_MINUTES = 0.05            # 3 s
SESSION_HOURS = 0.01           # 36 s


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def home(console_template: Path, tmp_path: Path) -> Path:
    return copy_home(console_template, tmp_path / "home")


def console_app(home: Path, clock: Clock):  # noqa: ANN201 - a FastAPI app (close its console)
    from app.console.web import ConsoleConfig, create_app
    from pipeline.config import load_settings

    settings = load_settings(env={"MHLADR_HOME": str(home), "MHLADR_CONSOLE_IDLE_MINUTES": str(IDLE_MINUTES),
                                  "MHLADR_CONSOLE_SESSION_HOURS": str(SESSION_HOURS)})
    return create_app(ConsoleConfig(settings, clock=clock))


@pytest.fixture
def served(home: Path) -> Iterator[tuple[TestClient, Clock]]:
    clock = Clock()
    app = console_app(home, clock)
    try:
        with TestClient(app, base_url="http://console.test") as client:
            yield client, clock
    finally:
        app.state.console.close()


def sign_in(client: TestClient, name: str) -> str:
    response = client.post("/api/login", json={"user": name, "password": PEOPLE[name][1]})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def test_the_idle_timeout_ends_a_session_and_activity_renews_it(served) -> None:  # noqa: ANN001
    client, clock = served
    sign_in(client, "tech")
    for _ in range(5):                            # active every 2 s: 10 s in all, longer than the idle 3 s
        clock.now += 2.0
        assert client.get("/api/reviews").status_code == 200
    clock.now += 3.5
    ended = client.get("/api/reviews")
    assert ended.status_code == 401 and ended.json()["error"]["code"] == "session_ended"
    assert "without activity" in ended.json()["error"]["message"]
    page = client.get("/screening", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=%2Fscreening&ended=idle")
    login = client.get(page.headers["location"])
    assert "Your session ended after 0.05 min without activity: please sign in again." in login.text


def test_the_absolute_lifetime_ends_an_active_session(served) -> None:  # noqa: ANN001
    client, clock = served
    sign_in(client, "tech")
    for _ in range(20):                           # never idle, but 40 s > 36 s
        clock.now += 2.0
        if client.get("/api/reviews").status_code != 200:
            break
    assert clock.now - 1_800_000_000.0 > SESSION_HOURS * 3600 - 2
    page = client.get("/", follow_redirects=True)
    assert "/login" in str(page.url) and "reached its limit of 0.01 h" in page.text


def test_sign_out_and_disable_hold_across_a_restart(home: Path) -> None:
    """A cookie kept from before sign-out (or of a disabled user) is refused by a new console on
    the same home; an untouched session carries on."""
    clock = Clock()
    first = console_app(home, clock)
    with TestClient(first, base_url="http://console.test") as client:
        token = sign_in(client, "tech")
        kept = dict(client.cookies)
        assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 200
    with TestClient(first, base_url="http://console.test") as other:
        sign_in(other, "inv")
        inv = dict(other.cookies)
    with TestClient(first, base_url="http://console.test") as leaving:
        sign_in(leaving, "leaving")
        leaving_cookie = dict(leaving.cookies)
    first.state.console.store.users.disable("leaving", actor="adm")
    first.state.console.store.users.enable("leaving", actor="adm")     # enabled again: old sessions stay over
    first.state.console.close()
    second = console_app(home, clock)                                  # serve restarted
    try:
        with TestClient(second, base_url="http://console.test", cookies=kept) as replay:
            refused = replay.get("/api/screening")
            assert refused.status_code == 401 and "signed out" in refused.json()["error"]["message"]
        with TestClient(second, base_url="http://console.test", cookies=leaving_cookie) as replay:
            assert replay.get("/api/screening").status_code == 401
        with TestClient(second, base_url="http://console.test", cookies=inv) as carried_on:
            assert carried_on.get("/api/screening").status_code == 200
        with TestClient(second, base_url="http://console.test") as again:
            sign_in(again, "tech")
            assert again.get("/api/screening").status_code == 200
        actions = [(e.actor, e.action) for e in second.state.console.store.audit.entries()]
        assert ("tech", "logout") in actions
    finally:
        second.state.console.close()


def test_change_my_password(served) -> None:  # noqa: ANN001
    client, _ = served
    sign_in(client, "unb")
    page = client.get("/password")
    assert page.status_code == 200 and "Change my password" in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"csrf_token": token, "current": "wrong one", "new": "unb-new-pass-2", "again": "unb-new-pass-2"}
    assert client.post("/password", data=form).status_code == 422
    assert client.post("/password", data={**form, "current": PEOPLE["unb"][1], "again": "other"}).status_code == 422
    assert client.post("/password", data={**form, "csrf_token": "forged", "current": PEOPLE["unb"][1]}).status_code == 403
    done = client.post("/password", data={**form, "current": PEOPLE["unb"][1]})
    assert done.status_code == 200 and "Your password was changed." in done.text
    assert client.get("/api/screening").status_code == 200            # this session goes on
    with TestClient(client.app, base_url="http://console.test") as fresh:
        assert fresh.post("/api/login", json={"user": "unb", "password": PEOPLE["unb"][1]}).status_code == 401
        assert fresh.post("/api/login", json={"user": "unb", "password": "unb-new-pass-2"}).status_code == 200
