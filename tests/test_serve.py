"""``mhladr serve`` as a lab runs it (DESIGN.md, Additions): ``serve.json`` once ready, a Prefect UI
that talks to the served API, the lab console over HTTP, one serve per home (a second exits 2
and changes nothing), Ctrl-C within 10 s with one line, ``--stop-server`` stopping it cleanly.

The serve runs in the embedded mode on the session's Prefect server: its home is the server's
home, so ``serve`` finds the server healthy and reuses it (no second Prefect server).
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.prefect_harness import REPO, cli_env

PASSWORD = "serve-test-pass"


SERVE_USER = pwd.getpwuid(os.getuid()).pw_name      # the OS account acts (app.identity)


def serve_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"MHLADR_HOME": str(home), "MHLADR_CONSOLE_PORT": "0", "MHLADR_PREFECT_PORT": "0", "DO_NOT_TRACK": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))})
    env.update(extra)
    return env


@dataclass
class Served:
    proc: subprocess.Popen
    home: Path
    out: Path
    err: Path

    @property
    def state(self) -> dict:
        return json.loads((self.home / "serve.json").read_text())


def start(home: Path, env: dict[str, str], logs: Path, *args: str) -> Served:
    out, err = logs / "serve.out", logs / "serve.err"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--timezone", "Europe/Paris", *args],
                            env=env, stdout=out.open("w"), stderr=err.open("w"), stdin=subprocess.DEVNULL,
                            start_new_session=True)
    served = Served(proc, home, out, err)
    deadline = time.monotonic() + 120
    while not (home / "serve.json").is_file():
        assert proc.poll() is None, f"serve exited with {proc.returncode}: {err.read_text()}"
        assert time.monotonic() < deadline, "serve.json was not written in time"
        time.sleep(0.2)
    return served


def finish(served: Served) -> None:
    if served.proc.poll() is None:
        os.killpg(served.proc.pid, signal.SIGTERM)
        try:
            served.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(served.proc.pid, signal.SIGKILL)
            served.proc.wait()


def deployments(api: str) -> list[tuple]:
    """What a second serve must not change: every deployment's pause, parameters and schedules."""
    from flows.server import auth_headers

    found = httpx.post(f"{api}/deployments/filter", json={}, headers=auth_headers(api), timeout=10).json()
    return sorted((d["name"], d["paused"], json.dumps(d["parameters"], sort_keys=True),
                   json.dumps(sorted((s["id"], s["active"], json.dumps(s["schedule"], sort_keys=True))
                                     for s in d["schedules"])), d["updated"]) for d in found)


@pytest.fixture(scope="module")
def served(prefect_server, prefect_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # noqa: ANN001
    from pipeline.config import load_settings
    from pipeline.store import open_store

    with open_store(load_settings(env={"MHLADR_HOME": str(prefect_home)})) as store:
        if store.users.get(SERVE_USER) is None:
            store.users.add(SERVE_USER, "technician", PASSWORD, actor="test-setup")
    running = start(prefect_home, serve_env(prefect_home), tmp_path_factory.mktemp("serve-logs"))
    try:
        yield running
    finally:
        finish(running)


def test_serve_json_names_the_running_serve_and_its_urls(served: Served, prefect_server) -> None:  # noqa: ANN001
    state = served.state
    assert set(state) == {"pid", "prefect_api", "prefect_ui", "console"}
    assert state["pid"] == served.proc.pid
    assert state["prefect_api"] == prefect_server.url and state["prefect_ui"] == prefect_server.ui_url
    assert httpx.get(state["prefect_api"] + "/health", timeout=10).status_code == 200
    lines = served.err.read_text().splitlines()
    assert f"Lab console: {state['console']}" in lines and f"Prefect UI:  {state['prefect_ui']}" in lines


def test_the_prefect_ui_is_told_the_served_api(served: Served) -> None:
    state = served.state
    settings = httpx.get(state["prefect_ui"] + "/ui-settings", timeout=10).json()
    assert settings["api_url"] == state["prefect_api"]


def test_the_prefect_api_and_ui_are_locked(served: Served, prefect_home: Path) -> None:
    """Basic auth (Prefect's server.api.auth_string) with the secret kept under MHLADR_HOME, 0600."""
    state = served.state
    secret = prefect_home / "prefect" / "auth"
    assert secret.stat().st_mode & 0o777 == 0o600
    auth = tuple(secret.read_text().strip().split(":", 1))
    for path in ("/flow_runs/filter", "/deployments/filter", "/artifacts/filter"):
        assert httpx.post(state["prefect_api"] + path, json={}, timeout=10).status_code == 401
        assert httpx.post(state["prefect_api"] + path, json={}, auth=("mhladr", "guess"), timeout=10).status_code == 401
        assert httpx.post(state["prefect_api"] + path, json={}, auth=auth, timeout=10).status_code == 200
    assert httpx.get(state["prefect_ui"] + "/ui-settings", timeout=10).json()["auth"] == "BASIC"


def test_the_console_is_served_with_its_api(served: Served) -> None:
    with httpx.Client(base_url=served.state["console"], timeout=30) as client:
        assert client.get("/api/reviews").status_code == 401
        login = client.post("/api/login", json={"user": SERVE_USER, "password": PASSWORD})
        assert login.status_code == 200 and login.json()["role"] == "technician"
        assert client.get("/api/reviews").json() == []
        assert client.get("/api/screening").status_code == 200
        assert client.get("/").status_code == 200


def test_a_second_serve_exits_2_naming_the_first_and_changes_nothing(served: Served) -> None:
    state = served.state
    before = deployments(state["prefect_api"])
    assert [d[0] for d in before if d[0] in ("finish-pending", "daily-qc", "review")]
    for extra in ([], ["--json"]):
        second = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--timezone", "UTC", *extra],
                                env=serve_env(served.home), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = second.stderr.splitlines()
        assert len(lines) == 1 and "already running" in lines[0] and f"pid {served.proc.pid}" in lines[0]
        assert state["console"] in lines[0]
        if extra:
            assert json.loads(second.stdout)["error"]["code"] == "already_running"
        else:
            assert second.stdout == ""
    assert deployments(state["prefect_api"]) == before
    assert served.state == state and served.proc.poll() is None


def test_ctrl_c_ends_serve_within_10_s_with_one_line(served: Served) -> None:
    from app.serving import holder

    err_before = served.err.read_text()
    started = time.monotonic()
    os.kill(served.proc.pid, signal.SIGINT)
    assert served.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    printed = served.out.read_text().splitlines() + served.err.read_text()[len(err_before):].splitlines()
    assert printed == ["stopped serving"]
    assert not (served.home / "serve.json").exists() and holder(served.home) is None


def test_stop_server_stops_a_running_serve_cleanly(prefect_server, tmp_path: Path) -> None:  # noqa: ANN001
    home = tmp_path / "home"
    env = cli_env(prefect_server.url, home)
    running = start(home, env, tmp_path)
    try:
        stopped = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--stop-server"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == f"stopped mhladr serve (pid {running.proc.pid})"
        assert running.proc.wait(timeout=20) == 0
        assert running.out.read_text().splitlines() == ["stopped serving"]
        assert "Traceback" not in running.err.read_text()
        assert not (home / "serve.json").exists()
        assert httpx.get(prefect_server.url + "/health", timeout=10).status_code == 200   # a shared server stays
    finally:
        finish(running)


def test_sign_out_and_disable_survive_a_restart_of_serve(prefect_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A cookie kept from before a sign-out, or of a person disabled meanwhile, gets 401 from the
    next ``serve`` of the same home; a session left alone carries on."""
    from pipeline.config import load_settings
    from pipeline.store import open_store

    home = tmp_path / "home"
    with open_store(load_settings(env={"MHLADR_HOME": str(home)})) as store:
        for name, role in (("adm", "admin"), ("tech", "technician"), ("inv", "investigator"),
                           (SERVE_USER, "technician")):                  # the OS account runs serve
            store.users.add(name, role, PASSWORD, actor="test-setup")
    env = cli_env(prefect_server.url, home)
    cookies: dict[str, httpx.Cookies] = {}
    running = start(home, env, tmp_path)
    try:
        url = running.state["console"]
        for name in ("tech", "inv", "adm"):
            with httpx.Client(base_url=url, timeout=30) as client:
                login = client.post("/api/login", json={"user": name, "password": PASSWORD})
                assert login.status_code == 200 and client.get("/api/screening").status_code == 200
                cookies[name] = httpx.Cookies(client.cookies)
                if name == "tech":
                    out = client.post("/api/logout", headers={"X-CSRF-Token": login.json()["csrf_token"]})
                    assert out.status_code == 200
        with open_store(load_settings(env={"MHLADR_HOME": str(home)})) as store:
            store.users.disable("inv", actor="adm")
    finally:
        finish(running)
    again = start(home, env, tmp_path)
    try:
        url = again.state["console"]
        statuses = {}
        for name, kept in cookies.items():
            with httpx.Client(base_url=url, timeout=30, cookies=kept) as client:
                statuses[name] = client.get("/api/screening").status_code
        assert statuses == {"tech": 401, "inv": 401, "adm": 200}
    finally:
        finish(again)
