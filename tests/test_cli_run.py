"""``mhladr run`` as a technician reads it: the table, the screening log and a one-line summary,
no orchestrator log line (those go to the log file and the Prefect UI; ``--verbose`` shows them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.prefect_harness import cli_env

# What Prefect's console handler prints for flow and task runs (prefect/logging/logging.yml).
ORCHESTRATOR_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING|ERROR|DEBUG) +\| ", re.M)


def mhladr(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=240)


def test_run_prints_the_table_and_a_summary_and_no_log_line(prefect_server, data_samples: Path,
                                                            tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("BEADS_2026-03-13_lotA_CALIBUR.fcs", "PT-0043_D06_HLADR.fcs", "PT-0052_D06_HLADR.fcs"):
        shutil.copy(data_samples / name, inbox / name)
    (inbox / "lots.csv").write_text("lot,low,med_low,med_high,high\nlotB,638,6930,31008,67601\n")
    home = tmp_path / "home"
    # INFO, as on a lab machine (the harness turns Prefect's logging down to WARNING)
    env = cli_env(prefect_server.url, home, PREFECT_LOGGING_LEVEL="INFO")
    args = ["run", str(inbox), "--registry", str(data_samples / "registry.csv")]

    quiet = mhladr(args, env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == "" and not ORCHESTRATOR_LINE.search(quiet.stdout)
    lines = quiet.stdout.splitlines()
    assert lines[0].split() == ["FILE", "STATUS", "QC", "RESULT"]
    beads = next(i for i, line in enumerate(lines) if line.startswith("BEADS_2026-03-13_lotA_CALIBUR.fcs"))
    assert lines[beads].split()[1] == "rejected" and "unknown bead lot 'lotA'" in lines[beads]
    assert lines[beads + 1].strip() == (f"- next: add lot lotA to {inbox / 'lots.csv'} (or correct the table), "
                                        f"then: mhladr reprocess {inbox / 'BEADS_2026-03-13_lotA_CALIBUR.fcs'} "
                                        "--reason TEXT")
    assert lines[-1] == ("3 file(s): 2 pending_calibration, 1 rejected. Needs a person: 1 rejected file(s) "
                         "(next step under each); 2 sample(s) waiting for their beads.")
    log = (home / "logs" / "mhladr.log").read_text()
    assert "Finished in state Completed()" in log          # the log lines went to the log file

    (inbox / "lots.csv").write_text((data_samples / "lots.csv").read_text())
    fixed = mhladr(["reprocess", str(inbox / "BEADS_2026-03-13_lotA_CALIBUR.fcs"), "--reason", "lotA added"], env)
    assert fixed.returncode == 0 and fixed.stdout.splitlines()[0] == "BEADS_2026-03-13_lotA_CALIBUR.fcs: calibrated"
    assert "PT-0043_D06_HLADR.fcs: measured" in fixed.stdout and "PT-0052_D06_HLADR.fcs: measured" in fixed.stdout

    verbose = mhladr([*args, "--verbose"], env)             # the same check sees log lines when they are shown
    assert verbose.returncode == 0 and ORCHESTRATOR_LINE.search(verbose.stderr)
    summary = verbose.stdout.splitlines()[-1]
    assert summary.startswith("3 file(s): 1 calibrated, 2 measured. Needs a person: 1 result(s) to review "
                              "(mhladr review list)")
    review = re.search(r"- next: QC review: approve or reject with mhladr review approve\|reject (\d+) --reason TEXT",
                       verbose.stdout)
    assert review is not None
    report = next((home / "reports").glob("PT-0052_D06_HLADR_*.html")).read_text()
    assert f"mhladr review approve|reject {review.group(1)} --reason TEXT" in report

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = mhladr(["run", str(empty)], env)
    assert nothing.returncode == 0 and nothing.stderr == ""
    assert nothing.stdout.splitlines()[0] == f"{empty}: no FCS files (.fcs, .lmd) in this folder; nothing to process"
    assert nothing.stdout.splitlines()[-1].startswith("0 file(s): nothing new. Needs a person: 1 result(s) to review")
