"""Blinding at rest and in every output (DESIGN.md, Additions 2026-12-07, At rest): the home's
files are not readable by other operating-system users (fresh and reopened homes), and a blinded
role receives neither a post-randomization value nor the tube's PE statistic, PE histogram or bead
curve on any surface (console pages, API, reports, run/results documents, the review flow's request),
while the unblinded role reads the values in the report."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console_fixtures import BLINDED_FILE, RunningConsole

TUBES = ("BEADS_2026-03-12_lotA_CANTO.fcs", "PT-0042_D07_HLADR.fcs")


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual umask 022 (files readable by everyone) around a test; restored after."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def open_to_others(home: Path) -> list[Path]:
    """Every path of ``home`` (the Prefect server's folder aside) that other users could read."""
    found = [home] if stat.S_IMODE(home.stat().st_mode) & 0o007 else []
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if d != "prefect"]
        found += [Path(root) / n for n in dirs + files
                  if stat.S_IMODE((Path(root) / n).lstat().st_mode) & 0o007]
    return found


def test_a_fresh_home_and_a_reopened_one_are_closed_to_other_users(tmp_path: Path, data_samples: Path, lax_umask,
                                                                   caplog) -> None:  # noqa: ANN001
    from pipeline.config import load_settings
    from pipeline.processing import Processor
    from pipeline.store import open_store

    home = tmp_path / "home"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in TUBES:
        shutil.copy(data_samples / name, inbox / name)
    settings = load_settings(env={"MHLADR_HOME": str(home)})
    proc = Processor(settings, registry_csv=data_samples / "registry.csv", lots_csv=data_samples / "lots.csv")
    try:
        for name in TUBES:
            proc.process(inbox / name)
    finally:
        proc.close()
    written = {p.relative_to(home).as_posix() for p in home.rglob("*")}
    assert "mhladr.sqlite" in written and any(p.startswith("reports/data/") and p.endswith(".npz") for p in written)
    assert any(p.startswith("reports/") and p.endswith(".html") for p in written)
    assert open_to_others(home) == []
    # A home from before (or copied with the usual umask): everything readable by others ...
    os.umask(0o022)
    for path in [home, *home.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert len(open_to_others(home)) == len(written) + 1
    with caplog.at_level(logging.WARNING, logger="mhladr.home"):
        open_store(settings).close()                     # ... is fixed when it is opened again, with a note
    assert open_to_others(home) == []
    notes = [r.getMessage() for r in caplog.records if r.name == "mhladr.home"]
    assert len(notes) == 1 and "removed the permission bits for other users" in notes[0]
    assert stat.S_IMODE((home / "mhladr.sqlite").stat().st_mode) == 0o640


def blind_breaking(console: RunningConsole) -> tuple[int, list[str]]:
    """The post-randomization tube's id and every way its value, PE statistic or curve is written."""
    from pipeline import formatting as fmt

    blinded = console.measurement_of(BLINDED_FILE)
    with console.store() as store:
        meas = store.measurements.get(blinded).measurement
    curve = meas.calibration.curve
    texts = [fmt.abc(meas.abc), f"{meas.abc:,.0f}", repr(meas.abc), fmt.number(meas.pe_statistic),
             repr(meas.pe_statistic), f"{curve.slope:.4f}", f"{curve.intercept:.4f}", repr(curve.slope)]
    return blinded, [t for t in texts if t and t != "-"]


def words(page: str) -> str:
    """A page without its drawings' coordinates (SVG numbers are pixels, not values)."""
    return re.sub(r"<svg.*?</svg>", "", page, flags=re.S)


def test_a_blinded_role_sees_no_value_pe_statistic_histogram_or_curve_anywhere(console: RunningConsole) -> None:
    blinded, secrets = blind_breaking(console)
    for name in ("inv", "tech", "adm"):
        with console.login(name) as (client, _):
            pages = [client.get("/api/screening"), client.get("/screening"), client.get("/patients/PT-0047")]
            if name != "inv":
                review = client.get(f"/reviews/{blinded}")
                pages += [client.get("/api/reviews"), review]
                assert "<figcaption>Bead calibration" not in review.text and "PE histogram" not in review.text
                assert "withheld" in review.text
            assert all(p.status_code == 200 for p in pages)
            leaked = [(p.url.path, s) for p in pages for s in secrets if s in words(p.text)]
            assert leaked == [], name
            assert client.get(f"/reports/measurements/{blinded}").status_code == 403
    report = next((console.home / "reports").glob(f"{Path(BLINDED_FILE).stem}_*[0-9a-f].html"))
    text = report.read_text()                           # the blinded report at rest: no curve either
    assert "withheld" in text and not [s for s in secrets if s in words(text)]
    assert "monocyte PE histogram" not in text
    with_values = report.with_suffix(".unblinded.html").read_text()      # the unblinded role's, beside it
    assert with_values.count("<svg") > text.count("<svg") and secrets[0] in with_values


def test_the_unblinded_role_reads_the_values_in_the_report(console: RunningConsole) -> None:
    blinded, secrets = blind_breaking(console)
    with console.login("unb") as (client, _):
        report = client.get(f"/reports/measurements/{blinded}")
    assert report.status_code == 200 and "withheld" not in report.text
    assert secrets[0] in report.text and f"{secrets[5]}" in report.text          # AB/C and the curve
    with console.store() as store:
        reads = [e for e in store.audit.entries() if e.actor == "unb" and e.action == "unblinded_report"]
    assert reads


def test_run_documents_and_the_review_request_withhold_the_curve(console: RunningConsole) -> None:
    from flows.review import describe
    from pipeline.blinding import withheld_document

    blinded, secrets = blind_breaking(console)
    with console.store() as store:
        stored = store.measurements.get(blinded)
        request = describe(store, stored, f"http://console/reviews/{blinded}")
    document = {"abc": 1.0, "pe_statistic": 2.0, "calibration": {"lot": "A", "slope": 1.1, "intercept": 0.2,
                                                                 "r2": 0.999, "peaks": [{"fluorescence": 9.0}]}}
    hidden = withheld_document(document)
    assert hidden["calibration"] == {"lot": "A", "slope": None, "intercept": None, "r2": None, "peaks": None}
    assert hidden["abc"] is None and hidden["pe_statistic"] is None
    assert not [s for s in secrets if s in request] and f"/reviews/{blinded}" in request


def test_results_on_the_command_line_withhold_for_blinded_roles(console: RunningConsole, monkeypatch,
                                                                capsys) -> None:  # noqa: ANN001
    from app.cli import main

    _, secrets = blind_breaking(console)
    monkeypatch.setenv("MHLADR_HOME", str(console.home))
    for name in ("tech", "inv", "adm"):
        monkeypatch.setattr("app.identity.os_account", lambda name=name: name)
        assert main(["results", "--patient", "PT-0047", "--json"]) == 0
        out = capsys.readouterr().out
        rows = json.loads(out)
        assert rows and not [s for s in secrets if s in out], name


def test_the_run_artifacts_of_a_withheld_tube_carry_no_value() -> None:
    """The Prefect artifacts of a batch (files table, report links) are made from the withheld
    document: no AB/C, no PE statistic, no curve; the link is the console's http address of the
    report, which serves the blinded one to every role but unblinded (never a file:// path)."""
    from flows.artifacts import file_rows, report_markdown
    from pipeline.blinding import withheld_document
    from pipeline.result_documents import FileResult

    fields = withheld_document({"abc": 13512.0, "pe_statistic": 812.5, "measurement_id": 7,
                                "report": "/home/lab/.mhladr/reports/PT-0047_D06_HLADR_abc.html",
                                "qc": {"status": "pass", "reasons": []},
                                "calibration": {"slope": 1.0123, "intercept": 0.4321, "peaks": []}})
    result = FileResult("/inbox/PT-0047_D06_HLADR.fcs", "ab" * 32, "sample", "measured", (), "PT-0047", fields)
    shown = json.dumps(file_rows([result])) + (report_markdown([result], "http://127.0.0.1:8470") or "")
    assert not any(s in shown for s in ("13512", "13,512", "812.5", "1.0123", "0.4321"))
    assert "http://127.0.0.1:8470/reports/measurements/7" in shown and "file://" not in shown
