"""Blinding on every output path: a value collected after randomization (here 16,000 AB/C, monocyte
PE median 812) reaches only the `unblinded` role, each such read audited; every other output
(screening, exports, review list, review flow, screening digest, `run` results and the HTML
report) withholds it."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from app.cli import main
from pipeline.blinding import WITHHELD, withheld_document, withheld_reasons
from pipeline.config import load_settings
from pipeline.eligibility import PatientFacts
from science.qc import QC
from tests.store_fixtures import cli_home, measurement  # noqa: F401

PE_REASON = "monocyte PE median 812 lies outside the bead range 350..6.2e+04"
SECRET = ("16000", "16,000", "812", "15200", "16800")        # the value, its PE statistic, its interval


def leaks(text: str) -> list[str]:
    """The secret values in ``text``; a SHA-256 (e.g. the audit chain's head) may hold any digits."""
    text = re.sub(r"[0-9a-f]{64}", "", text)
    return [s for s in SECRET if s in text]


@pytest.fixture
def lab(cli_home):
    """PT-2 randomized on 2026-03-08; its tube of 2026-03-10 waits for a technician."""
    store = cli_home
    store.patients.upsert([PatientFacts("PT-1", date(2026, 3, 1), 8, True),
                           PatientFacts("PT-2", date(2026, 3, 1), 8, True, "", date(2026, 3, 8))],
                          today=date(2026, 3, 2))
    store.measurements.add(measurement(1, "PT-2", date(2026, 3, 6), 6100.0), size=5, today=date(2026, 3, 6))
    store.measurements.add(measurement(2, "PT-2", date(2026, 3, 10), 16000.0, qc=QC("review", (PE_REASON,))),
                           size=5, today=date(2026, 3, 10))
    for name, role in {"ann": "admin", "tom": "technician", "ivy": "investigator", "una": "unblinded"}.items():
        store.users.add(name, role, f"{name}'s long passphrase", actor="setup")
    return store


def as_login(monkeypatch, name):
    monkeypatch.setattr("app.identity.os_account", lambda: name)


def test_withheld_reasons_keep_the_finding_without_the_numbers():
    assert withheld_reasons([PE_REASON, "1,500 monocytes (fewer than 2000)"]) == (
        "monocyte PE median lies outside the bead range (values withheld: collected after randomization)",
        "1,500 monocytes (fewer than 2000)")
    doc = withheld_document({"abc": 16000.0, "abc_interval": [15200.0, 16800.0], "category": "normal",
                             "below_threshold": False, "pe_statistic": 812.0, "monocytes": 4200,
                             "qc": {"status": "review", "reasons": [PE_REASON]}})
    assert doc["blinded"] is True and doc["monocytes"] == 4200 and not leaks(json.dumps(doc))


def test_screening_needs_the_unblinded_role_for_post_randomization_values(lab, monkeypatch, capsys):
    as_login(monkeypatch, "ivy")
    assert main(["screening", "--json", "--today", "2026-03-12"]) == 0
    out = capsys.readouterr().out
    assert not leaks(out) and "post_randomization" not in out
    assert main(["screening", "--unblinded", "--json"]) == 2
    assert "needs the role unblinded; ivy is investigator" in capsys.readouterr().err
    as_login(monkeypatch, "una")
    assert main(["screening", "--unblinded", "--json", "--today", "2026-03-12"]) == 0
    rows = {r["patient_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert [m["abc"] for m in rows["PT-2"]["post_randomization"]] == [16000.0]
    entry = lab.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.entity_id) == ("una", "unblinded_screening", "PT-2")


def test_exports_need_the_unblinded_role_for_post_randomization_values(lab, tmp_path, monkeypatch, capsys):
    as_login(monkeypatch, "ivy")
    assert main(["export", "--sink", "csv", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 1          # PT-2's pre-randomization result
    assert not leaks((tmp_path / "ecrf.csv").read_text())
    assert main(["export", "--sink", "csv", "--unblinded"]) == 2
    assert "needs the role unblinded" in capsys.readouterr().err
    as_login(monkeypatch, "una")
    assert main(["export", "--sink", "csv", "--unblinded", "--json"]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "ecrf.csv").read_text())))
    assert [r["abc"] for r in rows if r["collection_date"] == "2026-03-10"] == ["16000.0"]
    assert [e.actor for e in lab.audit.entries() if e.action == "unblinded_export"] == ["una"]


def test_review_list_and_review_flow_withhold_the_value(lab, monkeypatch, capsys):
    as_login(monkeypatch, "tom")
    assert main(["review", "list"]) == 0
    out = capsys.readouterr().out
    assert "withheld" in out and "monocyte PE median lies outside the bead range" in out and not leaks(out)
    assert main(["review", "list", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["blinded"] is True and item["abc"] is None and not leaks(json.dumps(item))
    from flows.review import describe
    request = describe(lab, lab.measurements.get(item["measurement_id"]))
    assert WITHHELD in request and not leaks(request)


def test_screening_digest_withholds_the_value(lab):
    from flows.screening_digest import digest_markdown
    from pipeline.screening import screening_rows
    text = digest_markdown(screening_rows(lab, date(2026, 3, 12), None), lab.audit.verify())
    assert "PT-2" in text and not leaks(text) and "Chain head: `" in text and "intact" in text


def test_run_results_and_the_html_report_withhold_the_value(tmp_path: Path, data_samples: Path):
    """PT-0042's day-7 tube (2026-03-12) comes after its randomization on 2026-03-11."""
    from pipeline.processing import Processor

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("BEADS_2026-03-12_lotA_CANTO.fcs", "PT-0042_D07_HLADR.fcs", "lots.csv"):
        shutil.copy(data_samples / name, inbox / name)
    (inbox / "registry.csv").write_text(
        "patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,randomized_at\n"
        "PT-0042,2026-03-05T16:40,9,yes,,2026-03-11T10:00\n")
    proc = Processor(load_settings(env={"MHLADR_HOME": str(tmp_path / "home")}), registry_csv=inbox / "registry.csv",
                     lots_csv=inbox / "lots.csv")
    try:
        proc.process(inbox / "BEADS_2026-03-12_lotA_CANTO.fcs")
        result = proc.process(inbox / "PT-0042_D07_HLADR.fcs")
        stored = proc.store.measurements.of_file(result.sha256)
    finally:
        proc.close()
    value = f"{stored.abc:,.0f}"
    assert result.status == "measured" and stored.abc > 15000            # the store keeps the value
    assert result.fields["blinded"] is True and result.fields["abc"] is None
    assert result.fields["pe_statistic"] is None and result.fields["abc_interval"] is None
    page = Path(result.fields["report"]).read_text()
    assert WITHHELD in page and value not in page and "monocyte PE" not in page.split("<h2>Gates</h2>")[1]
    assert f"{stored.measurement.pe_statistic:,.0f}" not in page
