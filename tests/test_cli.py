"""The command line as an operator meets it: every unusable input is exit 2 with one line naming
it (never a traceback), anything else one line and a log file; help that guides; ``--version``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import COMMAND_MODULES, build_parser, main
from pipeline import __version__

BEADS = "BEADS_2026-03-12_lotA_CANTO.fcs"
SAMPLE = "PT-0042_D07_HLADR.fcs"
UNREACHABLE_DB = "postgresql+psycopg://u:secret@127.0.0.1:1/db"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MHLADR_HOME and no other MHLADR_* or Prefect server variable."""
    import os
    for key in list(os.environ):
        if key.startswith("MHLADR_") or key == "PREFECT_API_URL":
            monkeypatch.delenv(key)
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("MHLADR_HOME", str(folder))
    monkeypatch.setenv("MHLADR_PREFECT_PORT", "0")          # an embedded server on any free port
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture()
def inbox(tmp_path: Path, data_samples: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in (BEADS, SAMPLE, "lots.csv", "registry.csv"):
        (folder / name).write_bytes((data_samples / name).read_bytes())
    return folder


def commands(inbox: Path) -> dict[str, list[str]]:
    """Every sub-command with arguments that would work but for the bad input under test."""
    return {
        "inspect": ["inspect", str(inbox / SAMPLE)],
        "calibrate": ["calibrate", str(inbox / BEADS)],
        "analyze": ["analyze", str(inbox / SAMPLE), "--beads", str(inbox / BEADS)],
        "run": ["run", str(inbox)],
        "watch": ["watch", str(inbox)],
        "serve": ["serve", "--inbox", str(inbox)],
        "results": ["results"],
        "review": ["review", "list"],
        "screening": ["screening"],
        "reprocess": ["reprocess", str(inbox / BEADS), "--reason", "lot added"],
        "patients": ["patients", "import", str(inbox / "registry.csv")],
        "export": ["export"],
        "audit": ["audit", "verify"],
        "users": ["users", "list"],
        "validate": ["validate"],
    }


def refused(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[str, str]:
    """Run a command that must refuse its input: exit 2, exactly one stderr line, no traceback,
    and with --json the contract's error document. Returns (stderr line, error code)."""
    assert main(args) == 2, args
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and out == "", (args, err, out)
    assert main([*args, "--json"]) == 2
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert set(error) == {"file", "code", "message"} and err == f"{error['file']}: {error['message']}\n"
    return err.strip(), error["code"]


def test_every_command_is_driven_here() -> None:
    assert set(commands(Path("/x"))) == set(COMMAND_MODULES)


SETTINGS_FILES = {   # settings.toml content -> what the one line must name
    "abc_treshold = 7000\n": r"settings\.toml: unknown setting 'abc_treshold' \(did you mean abc_threshold\?",
    "abc_threshold = \n": r"settings\.toml: not valid TOML .*line 1",
    'abc_threshold = "nine"\n': r'settings\.toml: abc_threshold = "nine": must be a number \(e\.g\. abc_threshold = 8000\)',
}


@pytest.mark.parametrize("name", sorted(commands(Path("/x"))))
@pytest.mark.parametrize("content", sorted(SETTINGS_FILES))
def test_an_unusable_settings_file_stops_every_command(name: str, content: str, home: Path, inbox: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (home / "settings.toml").write_text(content, encoding="utf-8")
    line, code = refused(capsys, commands(inbox)[name])
    assert re.search(SETTINGS_FILES[content], line) and code == "bad_setting"


@pytest.mark.parametrize("name", sorted(commands(Path("/x"))))
def test_an_unusable_variable_stops_every_command(name: str, home: Path, inbox: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MHLADR_ABC_THRESHOLD", "abc")
    line, code = refused(capsys, commands(inbox)[name])
    assert line == "MHLADR_ABC_THRESHOLD: value 'abc': not a number (e.g. MHLADR_ABC_THRESHOLD=8000)"


DATABASE_COMMANDS = ("run", "watch", "results", "review", "screening", "reprocess", "patients", "export")


@pytest.mark.parametrize("name", DATABASE_COMMANDS)
def test_an_unreachable_database_is_named_without_its_password(name: str, home: Path, inbox: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MHLADR_DATABASE_URL", UNREACHABLE_DB)
    monkeypatch.setenv("MHLADR_CSV_EXPORT", str(home / "ecrf.csv"))     # export needs a sink to get that far
    line, code = refused(capsys, commands(inbox)[name])
    assert line.startswith("postgresql+psycopg://u:***@127.0.0.1:1/db: the results database does not answer")
    assert "secret" not in line and "MHLADR_DATABASE_URL" in line and code == "unreachable"


def test_a_database_url_of_another_kind_is_refused_when_loaded(home: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MHLADR_DATABASE_URL", "postgresql://u@127.0.0.1/db")   # psycopg2: not installed
    line, _ = refused(capsys, ["screening"])
    assert line.startswith("MHLADR_DATABASE_URL: value 'postgresql://u@127.0.0.1/db'") and "postgresql+psycopg" in line


def test_a_data_folder_that_cannot_be_made_is_named(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("MHLADR_HOME", str(blocker / "home"))
    line, _ = refused(capsys, ["screening"])
    assert line.startswith(f"{blocker / 'home'}: the data folder MHLADR_HOME cannot be used")


MISSING_PATHS = {   # command -> (arguments with a path that is not there, the path the line names)
    "inspect": (["inspect", "absent.fcs"], "absent.fcs"),
    "calibrate": (["calibrate", "absent.fcs"], "absent.fcs"),
    "analyze": (["analyze", "absent.fcs", "--beads", "INBOX/" + BEADS], "absent.fcs"),
    "run": (["run", "no_inbox"], "no_inbox"),
    "watch": (["watch", "no_inbox"], "no_inbox"),
    "serve": (["serve", "--inbox", "no_inbox"], "no_inbox"),
    "results": (["results", "--file", "absent.fcs"], "absent.fcs"),
    "reprocess": (["reprocess", "absent.fcs", "--reason", "x"], "absent.fcs"),
    "patients": (["patients", "import", "absent.csv"], "absent.csv"),
}


@pytest.mark.parametrize("name", sorted(MISSING_PATHS))
def test_a_missing_path_is_named(name: str, home: Path, inbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args, named = MISSING_PATHS[name]
    line, _ = refused(capsys, [a.replace("INBOX", str(inbox)) for a in args])
    assert line.startswith(f"{named}: no such")


REGISTRY_COMMANDS = {
    "analyze": lambda inbox: ["analyze", str(inbox / SAMPLE), "--beads", str(inbox / BEADS)],
    "run": lambda inbox: ["run", str(inbox)],
    "watch": lambda inbox: ["watch", str(inbox)],
    "serve": lambda inbox: ["serve", "--inbox", str(inbox)],
    "reprocess": lambda inbox: ["reprocess", str(inbox / BEADS), "--reason", "x"],
}


@pytest.mark.parametrize("name", sorted(REGISTRY_COMMANDS))
def test_a_missing_registry_is_named(name: str, home: Path, inbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line, _ = refused(capsys, [*REGISTRY_COMMANDS[name](inbox), "--registry", "absent.csv"])
    assert line == "absent.csv: no such file"


def test_a_registry_without_its_columns_is_named(home: Path, inbox: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "registry.csv"
    bad.write_text("patient,admitted\nPT-0042,2026-03-05\n")
    for args in (["analyze", str(inbox / SAMPLE), "--beads", str(inbox / BEADS)], ["patients", "import"]):
        line, _ = refused(capsys, [*args, *(["--registry"] if args[0] == "analyze" else []), str(bad)])
        assert line.startswith(f"{bad}: registry lacks column(s) patient_id, icu_admission")


FIGURES = {   # --figure target -> what the line says
    "nowhere/x.png": "no folder nowhere: create it first",
    "x.txt": "the figure is written as PNG: give a file name ending in .png",
    ".": "this is a folder: give a file name ending in .png",
}


@pytest.mark.parametrize("target", sorted(FIGURES))
@pytest.mark.parametrize("name", ["analyze", "calibrate"])
def test_a_figure_target_that_cannot_be_written_is_refused_before_any_work(
        name: str, target: str, home: Path, inbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line, _ = refused(capsys, [*commands(inbox)[name], "--figure", target])
    assert line == f"{target}: {FIGURES[target]}" or line.startswith(f"{target}: {FIGURES[target]}")
    assert not (inbox.parent / "x.txt").exists()


@pytest.mark.parametrize("args", [["calibrate"], ["run"], ["inspect", "x.fcs", "--data-set", "one"], ["bogus"]])
def test_a_command_line_that_does_not_parse_is_one_line(args: list[str], home: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    line, code = refused(capsys, args)
    assert code == "usage" and line.endswith("--help")


def test_inspect_numbers_data_sets_from_0_as_it_prints(home: Path, inbox: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(inbox / SAMPLE)]) == 0
    assert "data set 0 (data sets 0..0" in capsys.readouterr().out
    line, _ = refused(capsys, ["inspect", str(inbox / SAMPLE), "--data-set", "1"])
    assert line.endswith("data set 1 requested; the file has 1, numbered from 0 (0..0)")


def test_an_unexpected_failure_is_one_line_and_a_log_with_the_traceback(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import app.commands.screening as screening

    def broken(args):
        raise ZeroDivisionError("a bug deep inside")

    monkeypatch.setattr(screening, "run", broken)
    assert main(["screening"]) == 1
    out, err = capsys.readouterr()
    log = home / "logs" / "mhladr.log"
    assert out == "" and err == (f"mhladr screening: unexpected ZeroDivisionError: a bug deep inside (a fault of "
                                 f"mhladr, not of the input; traceback in {log})\n")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and 'raise ZeroDivisionError("a bug deep inside")' in text
    assert main(["screening", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "internal_error"


def test_version_is_the_installed_one(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"mhladr {__version__}\n" and __version__ == version("mhladr")


def test_the_console_script_refuses_with_one_line(home: Path, tmp_path: Path) -> None:
    """Through the installed entry point, as a person types it."""
    script = Path(sys.executable).parent / "mhladr"
    env = {"PATH": "/usr/bin:/bin", "MHLADR_HOME": str(home), "MHLADR_ABC_THRESHOLD": "abc"}
    done = subprocess.run([str(script), "screening"], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "MHLADR_ABC_THRESHOLD: value 'abc': not a number (e.g. MHLADR_ABC_THRESHOLD=8000)\n"


def test_top_level_help_lists_each_command_on_one_line_and_says_where_things_go(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert re.search(rf"^    {name} +\S", text, re.M), name
    for said in (f"MHLADR_HOME (now {home})", "mhladr serve --stop-server", "serve and watch stay in the foreground",
                 "leave it running"):
        assert said in " ".join(text.split()), said


OWN_COMMANDS = ("inspect", "calibrate", "analyze", "run", "watch", "serve", "results", "reprocess", "patients")


@pytest.mark.parametrize("name", OWN_COMMANDS)
def test_each_command_help_has_a_description_and_an_example_of_itself(name: str) -> None:
    parser = build_parser()._subparsers._group_actions[0].choices[name]
    text = parser.format_help()
    assert parser.description and len(parser.description.split()) >= 8
    assert re.search(rf"^examples:\n  mhladr {name} ", text, re.M), text


@pytest.mark.parametrize("name", ["calibrate", "analyze", "run", "watch", "serve", "reprocess"])
def test_the_lots_default_is_one_rule_said_in_each_help(name: str) -> None:
    parser = build_parser()._subparsers._group_actions[0].choices[name]
    lots = next(a for a in parser._actions if a.dest == "lots")
    assert lots.default is None and "lots.csv beside the FCS files (the inbox), else ./lots.csv" in lots.help


def test_the_wrong_kind_of_tube_or_a_folder_is_named(home: Path, inbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line, _ = refused(capsys, ["calibrate", str(inbox / SAMPLE)])
    assert line == (f"{inbox / SAMPLE}: this is a patient tube (PT-0042), not a bead tube: give the bead tube "
                    "(mhladr analyze takes a patient tube)")
    line, _ = refused(capsys, ["analyze", str(inbox / BEADS), "--beads", str(inbox / BEADS)])
    assert "this is a bead tube, not a patient tube" in line
    line, _ = refused(capsys, ["inspect", str(inbox)])
    assert line == f"{inbox}: a folder, not a file"
