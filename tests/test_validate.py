"""``mhladr validate``: IQ/OQ pass on a clean install and fail, naming the reason, on a wrong
environment (an unreachable database, a modified installed file, a wrong dependency version);
the release manifest and the OQ reference set are current; the run is signed and audited."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from app.cli import main
from pipeline.config import load_settings
from pipeline.store import open_store
from pipeline.validation import iq
from pipeline.validation.manifest import MANIFEST, PACKAGES, ROOT, current, load
from pipeline.validation.oq import REFERENCE
from pipeline.validation.report import digest

ADMIN = "correct horse battery"


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MHLADR_HOME as a lab installs it: private (umask 077), nothing else set."""
    for key in list(os.environ):
        if key.startswith(("MHLADR_", "PREFECT_API")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("MHLADR_HOME", str(home))
    old = os.umask(0o077)
    yield home
    os.umask(old)


def validate(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["validate", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_the_committed_release_manifest_is_current() -> None:
    """Rewrite it with `make release-manifest` after any change to the installed packages."""
    now, committed = current(), load(MANIFEST)
    changed = sorted(f for f in set(now["files"]) | set(committed["files"])
                     if now["files"].get(f) != committed["files"].get(f))
    assert changed == [], f"release manifest out of date for: {changed[:10]} (make release-manifest)"
    assert now["dependencies"] == committed["dependencies"] and now["python"] == committed["python"]


def test_the_reference_set_is_what_the_generator_makes() -> None:
    """The shipped OQ tubes equal a fresh run of the seeded generator (`make oq-reference`)."""
    import hashlib

    from data_samples.oq_reference import tubes

    shipped = json.loads((REFERENCE / "cases.json").read_text())["files"]
    made = {name: hashlib.sha256(content).hexdigest() for name, content in tubes().items()}
    assert {n: d for n, d in shipped.items() if n in made} == made


def test_validate_passes_on_a_clean_install_signed_and_audited(clean_home, tmp_path, monkeypatch, capsys):
    with open_store(load_settings()) as store:
        store.users.add("ann", "admin", ADMIN, actor="setup")
    monkeypatch.setattr("app.identity.os_account", lambda: "ann")   # the OS account of the process
    monkeypatch.setattr("sys.stdin", io.StringIO("not it\n"))
    code, doc = validate(capsys, "--password-stdin")
    assert code == 2 and doc["error"]["code"] == "signature_refused"           # refused before anything ran
    monkeypatch.setattr("sys.stdin", io.StringIO(ADMIN + "\n"))
    folder = tmp_path / "qualification"
    code, doc = validate(capsys, "--password-stdin", "--report", str(folder))
    failed = [r for r in doc["results"] if r["result"] == "fail"]
    assert code == 0 and doc["ok"] and failed == [], failed
    stages = {r["stage"] for r in doc["results"]}
    names = {r["name"] for r in doc["results"]}
    assert stages == {"IQ", "OQ"} and doc["checks"] >= 60 and doc["passed"] + doc["not_run"] == doc["checks"]
    assert {"python", "installed files", "database reachable", "database migrations", "prefect reachable",
            "settings valid", "dependency numpy", "audit verify", "reference set intact"} <= names
    assert {"canto_normal AB/C", "calibur_severe AB/C", "lyric_reduced AB/C", "near_threshold_below screening",
            "truncated error code", "wrong_panel error code", "voltage_mismatch reason",
            "too_few_monocytes QC"} <= names
    assert doc["environment"]["host"] and doc["environment"]["mhladr"]
    written = json.loads((folder / "validation.json").read_text())
    assert written["sha256"] == doc["sha256"] == digest(written)             # anyone can recompute it
    page = (folder / "validation.html").read_text()
    assert "PASS: every check met its acceptance criterion" in page and doc["sha256"] in page
    assert doc["signature"]["user"] == "ann" and doc["signature"]["meaning"] == "validation run performed"
    with open_store(load_settings()) as store:
        (entry,) = [e for e in store.audit.entries() if e.action == "validation_run"]
        assert entry.after["sha256"] == doc["sha256"] and entry.after["ok"] is True
        assert [s.record_key for s in store.signatures.list()] == [str(entry.seq)] and store.audit.verify().ok


def test_validate_fails_on_an_unreachable_database(clean_home, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MHLADR_DATABASE_URL", "postgresql+psycopg://mhladr:secret@127.0.0.1:1/nowhere")
    code, doc = validate(capsys, "--report", str(tmp_path / "r"))
    failed = {r["name"]: r["observed"] for r in doc["results"] if r["result"] == "fail"}
    assert code == 1 and not doc["ok"] and set(failed) == {"database reachable", "database migrations"}
    assert failed["database reachable"].startswith("unreachable:") and "secret" not in json.dumps(doc)
    assert "FAIL" in (tmp_path / "r" / "validation.html").read_text()


def test_a_modified_installed_file_fails_naming_it(tmp_path: Path) -> None:
    release = load(MANIFEST)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert [c.passed for c in iq.files(release, tmp_path)] == [True]
    target = tmp_path / "pipeline" / "eligibility.py"
    target.write_text(target.read_text().replace("8000", "9000"))
    (tmp_path / "pipeline" / "backdoor.py").write_text("")
    (tmp_path / "science" / "qc.py").unlink()
    (found,) = iq.files(release, tmp_path)
    assert found.passed is False
    assert found.observed == ("modified: pipeline/eligibility.py; missing: science/qc.py; "
                              "not in the release: pipeline/backdoor.py")


def test_a_wrong_dependency_or_python_version_fails_naming_both(tmp_path: Path) -> None:
    from importlib import metadata

    release = {"python": "2.7", "dependencies": {"numpy": "1.0.0", "nosuchpackage": "1.0"}}
    (py,) = iq.python_version(release)
    assert py.passed is False and py.criterion == "Python 2.7" and py.observed.startswith("Python 3.")
    found = {c.name: c for c in iq.dependencies(release)}
    assert found["dependency numpy"].passed is False
    assert found["dependency numpy"].observed == f"numpy {metadata.version('numpy')}"
    assert found["dependency nosuchpackage"].observed == "nosuchpackage not installed"
    assert all(c.passed for c in iq.dependencies(load(MANIFEST)))
