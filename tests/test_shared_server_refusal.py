"""A shared Prefect server (``PREFECT_API_URL``) that cannot be used is an unusable setting:
``run``, ``watch`` and ``serve`` exit 2 with one line naming the setting (never the secret),
touch no file of the inbox and start nothing, whether the server does not answer or refuses
the credentials (DESIGN.md: a wrong setting is one clear line, never a traceback)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prefect_harness import cli_env

MHLADR = [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*MHLADR, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def inbox(tmp_path: Path, data_samples: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in ("BEADS_2026-03-12_lotA_CANTO.fcs", "PT-0042_D07_HLADR.fcs", "lots.csv", "registry.csv"):
        (folder / name).write_bytes((data_samples / name).read_bytes())
    return folder


@pytest.mark.parametrize("command, auth, says", [
    *[(command, "mhladr:not-the-secret", "refuses the credentials in PREFECT_API_AUTH_STRING")
      for command in ("run", "watch", "serve")],
    ("run", "", "refuses calls without credentials: set PREFECT_API_AUTH_STRING"),
])
def test_refused_credentials_are_one_line(command: str, auth: str, says: str, prefect_server: object,
                                          tmp_path: Path, inbox: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(prefect_server.url, home, PREFECT_API_AUTH_STRING=auth)  # type: ignore[attr-defined]
    args = {"run": ["run", str(inbox)], "watch": ["watch", str(inbox)], "serve": ["serve", "--inbox", str(inbox)]}
    before = sorted(p.name for p in inbox.iterdir())
    done = call(args[command], env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and says in lines[0] and prefect_server.url in lines[0], lines  # type: ignore[attr-defined]
    assert "not-the-secret" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert sorted(p.name for p in inbox.iterdir()) == before          # nothing moved, nothing written
    assert not (home / "serve.json").exists()


def test_a_server_that_does_not_answer_is_one_line(tmp_path: Path, inbox: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    done = call(["run", str(inbox)], cli_env(url, tmp_path / "home", PREFECT_API_AUTH_STRING=""))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"{url}: no Prefect server answers at PREFECT_API_URL: start it, or unset "
                                   "PREFECT_API_URL to use the embedded one")
