"""People and roles on the command line: `mhladr users`, the login as the actor, the role matrix
of every command that touches the results database, single-user mode and admins' scripts."""

from __future__ import annotations

import io
import json
import os
import pwd
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from app.cli import build_parser, main
from app.identity import COMMAND_ACTIONS, SINGLE_USER_NOTE, acting
from pipeline.access import PERMISSIONS, ROLES
from pipeline.errors import InputError
from science.qc import QC
from tests.store_fixtures import RegistryRow, cli_home, measurement, write_registry  # noqa: F401

PEOPLE = {"ann": "admin", "tom": "technician", "ivy": "investigator", "una": "unblinded"}
PURE = {"inspect", "calibrate", "analyze"}


@pytest.fixture
def home(cli_home):
    """An empty store the command line points at (roles do not depend on the backend)."""
    return cli_home


@pytest.fixture
def staffed(home):
    for name, role in PEOPLE.items():
        home.users.add(name, role, f"{name}'s long passphrase", actor="setup")
    home.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=QC("review", ("1,500 monocytes",))))
    return home


def login(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr("app.identity.os_account", lambda: name)      # the OS account of the process


def argv(command: str, tmp_path: Path) -> list[str]:
    registry = write_registry(tmp_path / "registry.csv", [RegistryRow("PT-1")])
    (tmp_path / "gates.xml").write_text("<gating/>")        # checked for being there before the role
    return {
        "run": ["run", str(tmp_path)], "watch": ["watch", str(tmp_path)], "serve": ["serve", "--stop-server"],
        "reprocess": ["reprocess", "a" * 64, "--reason", "lot added"],
        "review list": ["review", "list"], "review approve": ["review", "approve", "1", "--reason", "smear ok"],
        "review reject": ["review", "reject", "1", "--reason", "clots"],
        "review regate": ["review", "regate", "1", "--gating-ml", str(tmp_path / "gates.xml"),
                          "--reason", "granulocyte tail excluded"],
        "patients import": ["patients", "import", str(registry)], "screening": ["screening"],
        "screening --unblinded": ["screening", "--unblinded"], "export": ["export", "--sink", "csv"],
        "results": ["results"], "results --unblinded": ["results", "--unblinded"],
        "export --unblinded": ["export", "--sink", "csv", "--unblinded"],
        "users add": ["users", "add", "zed", "--role", "technician", "--password-stdin"],
        "users list": ["users", "list"], "users disable": ["users", "disable", "ivy"],
        "users enable": ["users", "enable", "ivy"], "users passwd": ["users", "passwd", "ann", "--password-stdin"],
        "audit report": ["audit", "report"], "validate": ["validate", "--report", str(tmp_path / "qualification")],
    }[command] + ["--json"]


def test_every_database_command_has_a_role_decision() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    names = set()
    for name, sub in commands.items():
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        names |= {f"{name} {s}" for s in nested[0].choices} if nested else {name}
    decided = {c for c in COMMAND_ACTIONS if "--" not in c}
    assert names == decided | PURE | {"audit verify"}
    assert all(action in PERMISSIONS for action in COMMAND_ACTIONS.values())


def test_help_names_single_user_mode_once(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("Single-user mode") == 1 and " ".join(SINGLE_USER_NOTE.split()) in out


@pytest.mark.parametrize("command", sorted(COMMAND_ACTIONS))
def test_each_role_the_matrix_refuses_is_refused(staffed, command, tmp_path, monkeypatch, capsys):
    action = COMMAND_ACTIONS[command]
    allowed = " or ".join(r for r in ROLES if r in PERMISSIONS[action])
    for name, role in PEOPLE.items():
        if role in PERMISSIONS[action]:
            continue
        login(monkeypatch, name)
        monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
        assert main(argv(command, tmp_path)) == 2, (command, role)
        captured = capsys.readouterr()
        assert json.loads(captured.out)["error"]["code"] == "forbidden"
        assert captured.err.splitlines() == [f"{name}: `mhladr {command}` needs the role {allowed}; {name} is {role}"]
    assert staffed.users.get("zed") is None and staffed.users.get("ivy").active


CHEAP = sorted(set(COMMAND_ACTIONS) - {"run", "watch"})       # run/watch would start the orchestrator


@pytest.mark.parametrize("command", CHEAP)
def test_each_role_the_matrix_allows_gets_through(staffed, command, tmp_path, monkeypatch, capsys):
    for name, role in PEOPLE.items():
        if role not in PERMISSIONS[COMMAND_ACTIONS[command]]:
            continue
        login(monkeypatch, name)
        monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
        code = main(argv(command, tmp_path))
        out = capsys.readouterr().out
        error = json.loads(out).get("error") if code else None
        assert code == 0 or error["code"] != "forbidden", (command, role, out)


@pytest.mark.parametrize("command", ["run", "watch"])
def test_run_and_watch_check_the_role_before_anything_starts(staffed, command, monkeypatch):
    login(monkeypatch, "tom")
    assert acting(staffed, command).name == "tom"
    login(monkeypatch, "una")
    with pytest.raises(InputError, match="needs the role technician or admin; una is unblinded"):
        acting(staffed, command)


def test_unregistered_and_disabled_logins_are_refused(staffed, tmp_path, monkeypatch, capsys):
    login(monkeypatch, "root")
    assert main(["screening", "--json"]) == 2
    assert capsys.readouterr().err.strip() == (
        "root: `mhladr screening` needs the role technician or investigator or unblinded or admin; root is not "
        "a registered user (an admin registers people with `mhladr users add`)")
    login(monkeypatch, "ann")
    assert main(["users", "disable", "tom"]) == 0
    capsys.readouterr()
    login(monkeypatch, "tom")
    assert main(["review", "list"]) == 2
    assert capsys.readouterr().err.strip().endswith("; tom is disabled")


@pytest.mark.parametrize("name", ["Tom", "TOM", "a b;drop", "", "x" * 33, "ann/1", "é"])
def test_names_are_refused_per_the_rules(staffed, monkeypatch, capsys, name):
    """[a-z0-9._-], 1-32 characters, unique without regard to case; exit 2 with one line."""
    login(monkeypatch, "ann")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["users", "add", name, "--role", "technician", "--password-stdin"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert [u.name for u in staffed.users.list()] == sorted(PEOPLE)


def test_names_ignore_case_and_follow_the_rule(staffed, monkeypatch, capsys):
    from pipeline.access import name_problem

    assert name_problem("tom.b-2_x") is None and name_problem("x" * 32) is None
    with pytest.raises(ValueError, match="not a user name"):
        staffed.users.add("Tom", "technician", "a long passphrase", actor="ann")
    with pytest.raises(ValueError, match="exists already"):
        staffed.users.add("tom", "investigator", "a long passphrase", actor="ann")
    assert staffed.users.get("TOM").name == "tom"                   # one person, whatever the case typed


def test_passwd_by_the_person_or_an_admin_and_enable(staffed, monkeypatch, capsys):
    login(monkeypatch, "tom")
    monkeypatch.setattr("sys.stdin", io.StringIO("tom's new passphrase\n"))
    assert main(["users", "passwd", "tom", "--password-stdin"]) == 0
    assert staffed.users.authenticate("tom", "tom's new passphrase") is not None
    assert staffed.users.authenticate("tom", "tom's long passphrase") is None
    monkeypatch.setattr("sys.stdin", io.StringIO("ivy is locked out now\n"))
    assert main(["users", "passwd", "ivy", "--password-stdin"]) == 2
    assert capsys.readouterr().err.strip().endswith("needs the role admin; tom is technician")
    assert staffed.users.authenticate("ivy", "ivy's long passphrase") is not None
    login(monkeypatch, "ann")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "passwd", "ivy", "--password-stdin"]) == 2 and "8 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("ivy's reset passphrase\n"))
    assert main(["users", "passwd", "ivy", "--password-stdin"]) == 0
    assert staffed.users.authenticate("ivy", "ivy's reset passphrase") is not None
    assert main(["users", "disable", "ivy"]) == 0 and not staffed.users.get("ivy").active
    assert main(["users", "enable", "ivy", "--json"]) == 0 and staffed.users.get("ivy").active
    capsys.readouterr()
    assert main(["users", "enable", "nobody"]) == 2 and capsys.readouterr().err.strip() == "nobody: no such user"
    trail = [(e.actor, e.action, e.entity_id) for e in staffed.audit.entries()]
    assert ("tom", "change_password", "tom") in trail and ("ann", "change_password", "ivy") in trail
    assert ("ann", "enable_user", "ivy") in trail
    assert "passphrase" not in json.dumps([[e.before, e.after] for e in staffed.audit.entries()])


def test_logname_and_user_change_nothing(staffed, monkeypatch, capsys):
    """The actor is the process's real uid's account: environment variables naming a registered
    user neither grant that user's role nor put that user's name in the audit trail."""
    account = pwd.getpwuid(os.getuid()).pw_name
    assert account not in PEOPLE
    before = len(staffed.audit.entries())
    for name in PEOPLE:
        monkeypatch.setenv("LOGNAME", name)
        monkeypatch.setenv("USER", name)
        assert main(["results", "--unblinded", "--json"]) == 2
        captured = capsys.readouterr()
        assert json.loads(captured.out)["error"]["code"] == "forbidden"
        assert captured.err.startswith(f"{account}: `mhladr results --unblinded`")
        assert "16000" not in captured.out and "5100" not in captured.out
    assert len(staffed.audit.entries()) == before             # nothing read, nothing recorded in their names
    login(monkeypatch, "tom")
    monkeypatch.setenv("LOGNAME", "ann")
    assert main(["users", "list"]) == 2 and "tom is technician" in capsys.readouterr().err


def test_actor_is_only_for_an_admins_scripts(staffed, monkeypatch, capsys):
    login(monkeypatch, "tom")
    assert main(["review", "approve", "1", "--reason", "ok", "--actor", "ivy"]) == 2
    assert "--actor is only for an admin's scripts" in capsys.readouterr().err
    login(monkeypatch, "ann")
    assert main(["review", "approve", "1", "--reason", "ok", "--actor", "ivy"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ivy: `mhladr review approve` needs the role technician or admin; ivy is investigator")
    monkeypatch.setattr("sys.stdin", io.StringIO("tom's long passphrase\n"))   # the decision is tom's: he signs
    assert main(["review", "approve", "1", "--reason", "entered from the paper log", "--actor", "tom",
                 "--password-stdin", "--json"]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["actor"] == "tom" and decided["signature"]["user"] == "tom"
    entries = staffed.audit.entries()
    act_as = [e for e in entries if e.action == "act_as"]
    assert [(e.actor, e.entity_id, e.after) for e in act_as] == [("ann", "tom", {"command": "review approve"})]
    assert [(e.actor, e.action) for e in entries if e.action.startswith("review_")] == [("tom", "review_approve")]


def test_single_user_mode_until_the_first_admin(home, monkeypatch, capsys):
    home.measurements.add(measurement(1, "PT-1", date(2026, 3, 7), 5100.0, qc=QC("review", ("1,500 monocytes",))))
    login(monkeypatch, "lab-pc")
    assert main(["users", "list"]) == 0 and capsys.readouterr().out.strip() == "no users registered (single-user mode)"
    assert main(["review", "approve", "1", "--reason", "ok", "--actor", "tech-a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["actor"] == "tech-a"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["users", "add", "tom", "--role", "technician", "--password-stdin"]) == 2
    assert capsys.readouterr().err.strip() == ("tom: the first user must be an admin (--role admin): only an admin "
                                               "registers the others")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "ann", "--role", "admin", "--password-stdin"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "add", "ann", "--role", "admin", "--password-stdin"]) == 0
    assert "single-user mode is over" in capsys.readouterr().out
    assert main(["screening"]) == 2                         # lab-pc is no registered user
    capsys.readouterr()
    login(monkeypatch, "ann")
    monkeypatch.setattr("sys.stdin", io.StringIO("battery staple horse\n"))
    assert main(["users", "add", "tom", "--role", "technician", "--password-stdin", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "tom", "role": "technician", "active": True}
    monkeypatch.setattr("sys.stdin", io.StringIO("battery staple horse\n"))
    assert main(["users", "add", "tom", "--role", "admin", "--password-stdin"]) == 2
    assert capsys.readouterr().err.strip() == "tom: user 'tom' exists already"
    assert main(["users", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "ann", "role": "admin", "active": True},
                                                   {"name": "tom", "role": "technician", "active": True}]
    assert main(["users", "disable", "ann"]) == 2
    assert "last active admin" in capsys.readouterr().err
    assert main(["users", "disable", "nobody"]) == 2
    assert capsys.readouterr().err.strip() == "nobody: no such user"
    with home.engine.connect() as conn:
        hashes = list(conn.execute(text("SELECT password_hash FROM users")).scalars())
    assert all(h.startswith("scrypt$16384$8$1$") for h in hashes)
    trail = json.dumps([[e.before, e.after] for e in home.audit.entries()])
    assert "horse" not in trail and "scrypt" not in trail and "staple" not in trail


def test_the_readme_role_matrix_is_the_one_enforced() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Records, users and roles", 1)[1].split("\n## ", 1)[0]
    header = "| command | technician | investigator | unblinded | admin |"
    rows = section.split(header, 1)[1].strip().splitlines()[1:]
    documented = {}
    for row in rows:
        if not row.startswith("|"):
            break
        cells = [c.strip() for c in row.strip("|").split("|")]
        for command in cells[0].replace("`", "").split(", "):
            documented[command] = {role for role, cell in zip(ROLES, cells[1:]) if cell == "yes"}
    assert documented == {c: set(PERMISSIONS[a]) for c, a in COMMAND_ACTIONS.items()}
