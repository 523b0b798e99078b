"""The lab console under test: a results home made by the real pipeline, its people, one console
server per session (a real uvicorn over HTTP, linked to the session's Prefect server).

The home holds the sample set's four bead tubes and five patient tubes, every tube with QC
``review`` (``MHLADR_MONOCYTES_REVIEW_BELOW`` set above any count), so every patient waits for a
technician. PT-0047 is randomized on 2026-03-14 here: its day-6 tube (2026-03-17) is a
post-randomization result that blinded roles must never receive. Nothing runs at import time.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SAMPLES = ("PT-0042_D07_HLADR.fcs", "PT-0043_D06_HLADR.fcs", "PT-0045_D05_HLADR.fcs",
           "PT-0047_D02_HLADR.fcs", "PT-0047_D06_HLADR.fcs")
BLINDED_FILE = "PT-0047_D06_HLADR.fcs"
RANDOMIZED = {"PT-0047": "2026-03-14T10:00"}
# name -> (role, password)
PEOPLE = {"tech": ("technician", "tech-pass-1"), "inv": ("investigator", "inv-pass-1"),
          "unb": ("unblinded", "unb-pass-1"), "adm": ("admin", "adm-pass-1"),
          "throttled": ("technician", "throttled-pass-1"), "leaving": ("technician", "leaving-pass-1"),
          "locked": ("unblinded", "locked-pass-1")}   # locked out by refused signatures (test_console_api)


def make_home(home: Path, data_samples: Path) -> None:
    """Process the beads and :data:`SAMPLES` into ``home`` (all QC review) and register :data:`PEOPLE`."""
    from pipeline.config import load_settings
    from pipeline.processing import Processor
    from pipeline.store import open_store

    inbox = home.parent / f"{home.name}-inbox"
    inbox.mkdir(parents=True)
    for f in sorted(data_samples.glob("BEADS_*.fcs")) + [data_samples / s for s in SAMPLES]:
        shutil.copy(f, inbox / f.name)
    with (data_samples / "registry.csv").open() as src, (inbox / "registry.csv").open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            row["randomized_at"] = RANDOMIZED.get(row["patient_id"], row["randomized_at"])
            writer.writerow(row)
    settings = load_settings(env={"MHLADR_HOME": str(home), "MHLADR_MONOCYTES_REVIEW_BELOW": "100000000"})
    proc = Processor(settings, registry_csv=inbox / "registry.csv", lots_csv=data_samples / "lots.csv")
    try:
        for f in sorted(inbox.glob("*.fcs"), key=lambda f: (not f.name.startswith("BEADS"), f.name)):
            proc.process(f)
    finally:
        proc.close()
    with open_store(load_settings(env={"MHLADR_HOME": str(home)})) as store:
        for name, (role, password) in PEOPLE.items():
            store.users.add(name, role, password, actor="test-setup")


@pytest.fixture(scope="session")
def console_template(tmp_path_factory: pytest.TempPathFactory, data_samples: Path) -> Path:
    """A processed home, made once per session; tests copy it (:func:`copy_home`)."""
    home = tmp_path_factory.mktemp("console-template") / "home"
    make_home(home, data_samples)
    return home


def copy_home(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


@dataclass(frozen=True)
class RunningConsole:
    url: str
    home: Path
    prefect_api: str
    prefect_ui: str
    forget_failed_sign_ins: Callable[[], None] = lambda: None


    def store(self):  # noqa: ANN201 - a Store, opened on the console's home
        from pipeline.config import load_settings
        from pipeline.store import open_store
        return open_store(load_settings(env={"MHLADR_HOME": str(self.home)}))

    def measurement_of(self, file_name: str) -> int:
        with self.store() as store:
            return next(mm.id for mm in store.measurements.list(include_blinded=True)
                        if Path(mm.measurement.file).name == file_name)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, follow_redirects=False)

    @contextmanager
    def login(self, name: str) -> Iterator[tuple[httpx.Client, str]]:
        """A client signed in as ``name`` (see :data:`PEOPLE`) and its CSRF token. The sign-in
        throttle's memory of earlier tests' deliberate failures (all from 127.0.0.1, 20 per
        address) is forgotten first: each test starts a fresh 15-minute window."""
        self.forget_failed_sign_ins()
        with self.client() as client:
            response = client.post("/api/login", json={"user": name, "password": PEOPLE[name][1]})
            assert response.status_code == 200, response.text
            yield client, response.json()["csrf_token"]


@pytest.fixture(scope="session")
def console(console_template: Path, tmp_path_factory: pytest.TempPathFactory,
            prefect_server) -> Iterator[RunningConsole]:  # noqa: ANN001
    """The session's console: a copy of the template home served by uvicorn on a free port."""
    from app.console.sessions import LoginThrottle
    from app.console.thread import ConsoleThread, bind
    from app.console.web import ConsoleConfig, create_app
    from pipeline.config import load_settings

    home = copy_home(console_template, tmp_path_factory.mktemp("console") / "home")
    app = create_app(ConsoleConfig(load_settings(env={"MHLADR_HOME": str(home)}), prefect_api=prefect_server.url,
                                   prefect_ui=prefect_server.ui_url))
    server = ConsoleThread(app, bind("127.0.0.1", 0)).start()
    try:
        def forget() -> None:
            app.state.console.throttle = LoginThrottle(clock=app.state.console.config.clock)

        yield RunningConsole(server.url, home, prefect_server.url, prefect_server.ui_url, forget)
    finally:
        server.stop()
        app.state.console.close()
