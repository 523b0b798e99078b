"""``mhladr watch`` end to end: a burst of 200 files, each processed and moved exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.prefect_harness import cli_env

BURST = 200


def bead_variants(n: int) -> list[tuple[str, bytes]]:
    """Small QuantiBRITE tubes of one day whose contents differ only by their $FIL keyword."""
    from data_samples.generate import CANTO, fcs_bytes, make_bead_tube
    tube = make_bead_tube(CANTO, [474, 5359, 23843, 62336], events=4000, seed=7, lot="lotA")
    return [(f"BEADS_burst_{i:03d}.fcs", fcs_bytes(tube, f"BEADS_burst_{i:03d}.fcs")) for i in range(n)]


def test_burst_of_200_files_is_processed_exactly_once(prefect_server, data_samples: Path, tmp_path: Path) -> None:
    from pipeline.config import load_settings
    from pipeline.store import open_store
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    inbox.mkdir()
    files = bead_variants(BURST)
    early = 5                                    # landed while the watcher was down: the reconcile scan
    for name, content in files[:early]:
        (inbox / name).write_bytes(content)
    (inbox / "copy_of_first.fcs").write_bytes(files[0][1])
    env = cli_env(prefect_server.url, home)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "watch", str(inbox), "--lots",
                             str(data_samples / "lots.csv"), "--interval", "0.3", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        for name, content in files[early:]:
            (inbox / name).write_bytes(content)
        deadline = time.monotonic() + 240
        while any(p.suffix == ".fcs" for p in inbox.iterdir()):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the inbox was not emptied in time"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out)["files"] >= BURST + 1
    processed = sorted(p.name for p in (inbox / "processed").glob("*.fcs"))
    quarantined = sorted(p.name for p in (inbox / "quarantine").glob("*.fcs"))
    assert len(processed) + len(quarantined) == BURST + 1
    assert "copy_of_first.fcs" in quarantined
    assert "duplicate" in (inbox / "quarantine" / "copy_of_first.fcs.reason.txt").read_text()
    assert sorted(processed + quarantined) == sorted([n for n, _ in files] + ["copy_of_first.fcs"])
    store = open_store(load_settings(env={"MHLADR_HOME": str(home)}))
    try:
        records = store.files.list()
        originals = [r for r in records if r.status != "duplicate"]
        assert len(originals) == BURST and len({r.sha256 for r in originals}) == BURST
        assert [r.path for r in records if r.status == "duplicate"] == [str(inbox / "copy_of_first.fcs")]
        for r in originals:            # the store knows where each file went
            assert Path(r.path).parent.name in ("processed", "quarantine") and Path(r.path).is_file()
    finally:
        store.close()
