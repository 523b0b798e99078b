"""``mhladr results``: stored results per patient or per file with their reports; values and
reports of post-randomization samples withheld (on both backends)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from app.cli import main
from science.qc import QC
from tests.store_fixtures import (RegistryRow, cli_env, clock, db_url, measurement, settings,  # noqa: F401
                                  sha, store, write_registry)


def load(store, settings, tmp_path) -> dict[int, Path]:
    """PT-1 with a QC review result, PT-3 randomized on 03-08 with one sample before and one after;
    a report drawn for each."""
    write_registry(tmp_path / "r.csv", [RegistryRow("PT-1"), RegistryRow("PT-3", randomized_at="2026-03-08T14:00")])
    assert main(["patients", "import", str(tmp_path / "r.csv")]) == 0
    reports = {}
    for n, pid, day, abc, qc in ((1, "PT-1", 7, 5100.0, QC("review", ("1,800 monocytes",))),
                                 (2, "PT-3", 7, 6000.0, QC()), (3, "PT-3", 10, 16000.0, QC())):
        store.measurements.add(measurement(n, pid, date(2026, 3, day), abc, qc=qc), size=1000,
                               today=date(2026, 3, day))
        reports[n] = settings.home / "reports" / f"{n}_{sha(n)[:12]}.html"
        reports[n].parent.mkdir(parents=True, exist_ok=True)
        reports[n].write_text("<html>report</html>")
    return reports


def listed(capsys, *args: str) -> list[dict]:
    assert main(["results", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_results_per_patient_with_reports_and_blinding(store, settings, cli_env, tmp_path, capsys):
    reports = load(store, settings, tmp_path)
    capsys.readouterr()
    rows = listed(capsys, "--patient", "PT-3")
    assert [(r["collection_date"], r["status"]) for r in rows] == [("2026-03-07", "measured"), ("2026-03-10", "measured")]
    before, after = rows
    assert before["abc"] == 6000.0 and before["report"] == str(reports[2]) and before["blinded"] is False
    assert after["blinded"] is True and after["abc"] is None and after["report"] is None
    assert after["abc_interval"] is None and after["category"] is None and after["qc"]["reasons"] == []
    assert "16000" not in json.dumps(rows) and "16,000" not in json.dumps(rows)
    assert main(["results", "--patient", "PT-3"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["ID", "PATIENT", "COLLECTED", "DAY", "AB/C", "QC", "REVIEW", "STATUS",
                                            "FILE"]
    assert f"report {reports[2]}" in text and "withheld" in text and "16,000" not in text


def test_unblinded_results_show_the_value_and_are_audited(store, settings, cli_env, tmp_path, capsys):
    reports = load(store, settings, tmp_path)
    capsys.readouterr()
    rows = listed(capsys, "--patient", "PT-3", "--unblinded", "--actor", "dsmb-stat")
    assert rows[1]["abc"] == 16000.0 and rows[1]["report"] == str(reports[3])
    entry = store.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.entity_id) == ("dsmb-stat", "unblinded_results", "PT-3")


def test_results_per_file_by_path_or_hash(store, settings, cli_env, tmp_path, capsys):
    load(store, settings, tmp_path)
    capsys.readouterr()
    by_hash = listed(capsys, "--file", sha(1))
    assert [(r["patient_id"], r["measurement_id"], r["qc"]["status"], r["review"]) for r in by_hash] == [
        ("PT-1", 1, "review", None)]
    assert by_hash[0]["next_step"] == "QC review: approve or reject with mhladr review approve|reject 1 --reason TEXT"
    assert listed(capsys, "--file", sha(99)) == []
    assert main(["results", "--file", sha(99)]) == 0
    assert capsys.readouterr().out.strip() == f"no stored results for {sha(99)}"
    assert [r["patient_id"] for r in listed(capsys)] == ["PT-1", "PT-3", "PT-3"]
