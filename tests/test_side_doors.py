"""Small leaks and wrong words (issue 16, item 6): export refused by role before any sink
message, the /beads 403 names its action, /api/screening gives file names (not server paths) to
non-admins, and the console speaks of its buttons, not command-line flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.console_fixtures import RunningConsole
from tests.store_fixtures import cli_home  # noqa: F401


def test_export_by_a_role_that_may_not_says_so(cli_home, monkeypatch, capsys) -> None:  # noqa: ANN001
    from app.cli import main

    cli_home.users.add("ann", "admin", "ann's long passphrase", actor="setup")
    cli_home.users.add("tom", "technician", "tom's long passphrase", actor="setup")
    monkeypatch.delenv("MHLADR_CSV_EXPORT", raising=False)
    monkeypatch.setattr("app.identity.os_account", lambda: "tom")
    assert main(["export", "--sink", "csv", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "forbidden"
    assert captured.err.strip() == "tom: `mhladr export` needs the role investigator or unblinded or admin; tom is technician"
    monkeypatch.setattr("app.identity.os_account", lambda: "ann")
    assert main(["export", "--sink", "csv"]) == 2 and "sink csv is off" in capsys.readouterr().err


def test_the_beads_refusal_names_the_bead_qc(console: RunningConsole) -> None:
    with console.login("inv") as (client, _):
        refused = client.get("/beads")
    assert refused.status_code == 403 and "may not see the bead QC" in refused.text
    assert "review QC results" not in refused.text


@pytest.mark.parametrize("name", ["tech", "inv", "unb"])
def test_api_screening_gives_file_names_not_server_paths(console: RunningConsole, name: str) -> None:
    with console.login(name) as (client, _):
        rows = client.get("/api/screening").json()
    files = [r["file"] for r in rows if r.get("file")] + [
        p["file"] for r in rows for p in r.get("post_randomization") or [] if p.get("file")]
    assert files and all("/" not in f and f.endswith(".fcs") for f in files)
    assert str(console.home.parent) not in json.dumps(rows)


def test_admins_still_see_where_the_file_is(console: RunningConsole) -> None:
    with console.login("adm") as (client, _):
        rows = client.get("/api/screening").json()
    assert any(r.get("file") and Path(r["file"]).is_absolute() for r in rows)


def test_console_messages_speak_of_buttons() -> None:
    from app.console.views import console_words

    assert console_words("technician review (mhladr review list)") == "technician review (the review queue)"
    assert console_words("already approved by tom at 2026-03-17T10:00:00+00:00 (ok); a second decision must "
                         "supersede it (--supersede)").endswith("tick Supersede and decide again")
    assert console_words("QC review: approve or reject with mhladr review approve|reject 12 --reason TEXT") == (
        "QC review: approve or reject it on its review page")
    assert console_words("export it again; then: mhladr reprocess /lab/inbox/PT-0045_D05_HLADR.fcs --reason TEXT") == (
        "export it again; then press Reprocess on the Files page, saying what was fixed")


def test_the_screening_page_has_no_command_line_flags(console: RunningConsole) -> None:
    with console.login("tech") as (client, _):
        pages = [client.get("/screening").text, client.get("/patients/PT-0043").text]
    assert not any("mhladr review" in p or "--supersede" in p for p in pages)
