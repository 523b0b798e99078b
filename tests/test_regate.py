"""Gate correction (issue 17, item 4): a gate fitted once and applied again without refitting, and
``mhladr review regate`` storing the corrected AB/C as the next version of the same result.

Known truth: re-applying a tube's own automatic gate (stored, or as its own GatingML export)
must give back its AB/C (within 0.5 %); a gate shrunk around its centre must give fewer
monocytes. Tubes are the generator's sample set, processed for real into a fresh home.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.cli import main

TUBE = "PT-0042_D07_HLADR.fcs"
BEADS = "BEADS_2026-03-12_lotA_CANTO.fcs"


@pytest.fixture
def home(tmp_path: Path, data_samples: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home holding one calibrated bead tube and one measured patient tube (CSV sink on)."""
    import os

    from pipeline.config import load_settings
    from pipeline.processing import Processor

    for key in list(os.environ):
        if key.startswith("MHLADR_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("MHLADR_HOME", str(home))
    monkeypatch.setenv("MHLADR_CSV_EXPORT", str(tmp_path / "ecrf.csv"))
    monkeypatch.setenv("MHLADR_MONOCYTES_REVIEW_BELOW", "100000000")      # every tube waits for a technician
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in (BEADS, TUBE):
        shutil.copy(data_samples / name, inbox / name)
    proc = Processor(load_settings(), registry_csv=data_samples / "registry.csv", lots_csv=data_samples / "lots.csv")
    try:
        for name in (BEADS, TUBE):
            proc.process(inbox / name)
        proc.push()
    finally:
        proc.close()
    return home


def open_home():  # noqa: ANN201
    from pipeline.config import load_settings
    from pipeline.store import open_store
    return open_store(load_settings())


def test_a_stored_gate_applied_again_gives_the_same_monocytes_and_a_shrunk_one_fewer(home: Path) -> None:
    from gating.result import GatePolygon
    from pipeline.config import load_settings
    from pipeline.regate import preview, stored_gate

    with open_home() as store:
        first = store.measurements.list()[0]
        gate = stored_gate(first)
        again = preview(store, load_settings(), first.id, gate=gate)
        assert abs(again.abc / first.abc - 1.0) < 0.005
        assert abs(again.monocytes - first.measurement.monocytes) <= 0.005 * first.measurement.monocytes
        polygon = gate.geometry.polygons[0]
        centre = polygon.as_array().mean(axis=0)
        shrunk = GatePolygon(polygon.name, tuple(map(tuple, centre + 0.5 * (polygon.as_array() - centre))))
        smaller = preview(store, load_settings(), first.id, gate=gate.with_polygons([shrunk]))
        assert smaller.monocytes < 0.8 * first.measurement.monocytes
        assert store.measurements.get(first.id).version == 1                   # a preview stores nothing
    with pytest.raises(ValueError):
        gate.with_polygons([GatePolygon("bad", ((0.0, 0.0), (1.0, np.nan), (2.0, 1.0)))])


def test_regate_with_the_tubes_own_export_is_a_new_version_with_the_same_abc(home: Path, capsys) -> None:  # noqa: ANN001
    from gating.result import GatePolygon
    from pipeline.config import load_settings
    from pipeline.processing import gating_ml_path
    from pipeline.regate import regate, stored_gate
    from pipeline.signing import Signer
    from pipeline.sinks.outbox import enqueue_results

    with open_home() as store:
        first = store.measurements.list()[0]
        assert store.measurements.review(first.id, "approve", "smear checked", "tech-a") is not None
        enqueue_results(store, ("csv",))
        export = gating_ml_path(home / "reports", first.measurement.file, first.measurement.sha256)
    assert export.is_file()
    assert main(["review", "regate", f"m{first.id}", "--gating-ml", str(export), "--reason",
                 "own gate re-applied", "--actor", "tech-a", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 2 and doc["previous_version"] == 1
    assert abs(doc["abc"] / doc["previous_abc"] - 1.0) < 0.005, (doc["abc"], doc["previous_abc"])
    with open_home() as store:
        versions = store.measurements.versions(first.id)
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].abc == pytest.approx(first.abc, rel=1e-12)           # the earlier version is kept
        assert store.measurements.get(first.id).version == 2
        assert store.audit.verify().ok
        assert any(e.action == "amend_measurement" and e.actor == "tech-a" for e in store.audit.entries())
        gate = stored_gate(versions[0])                       # then a real correction: the gate shrunk
        polygon = gate.geometry.polygons[0]
        centre = polygon.as_array().mean(axis=0)
        shrunk = GatePolygon(polygon.name, tuple(map(tuple, centre + 0.5 * (polygon.as_array() - centre))))
        _, third = regate(store, load_settings(), first.id, reason="tighter gate", signer=Signer("tech-b", None, False),
                          gate=gate.with_polygons([shrunk]))
        assert third.version == 3 and third.measurement.monocytes < versions[1].measurement.monocytes
        assert len(store.measurements.versions(first.id)) == 3
        enqueue_results(store, ("csv",))
        newest = max(store.outbox.undelivered("csv"), key=lambda item: item.version)
        assert newest.payload["status"] == "amended" and newest.payload["abc"] == pytest.approx(third.abc)
        assert store.screening.history(first.patient_id)[-1].abc == pytest.approx(third.abc)   # re-evaluated
        assert store.audit.verify().ok
    assert main(["results", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in rows if r.get("measurement_id") == first.id] == [3]
    with capsys.disabled():
        print(f"\nAB/C before {doc['previous_abc']:.1f}, after re-applying its own export {doc['abc']:.1f}")


def test_regate_refuses_an_unusable_gatingml_in_one_line(home: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-gatingml/>")
    with open_home() as store:
        mid = store.measurements.list()[0].id
    assert main(["review", "regate", str(mid), "--gating-ml", str(bad), "--reason", "x", "--actor", "t"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{bad}: not a usable GatingML 2.0")
    assert main(["review", "approve", "mx", "--reason", "x"]) == 2


def test_review_takes_the_id_results_shows(home: Path, capsys) -> None:  # noqa: ANN001
    with open_home() as store:
        mid = store.measurements.list()[0].id
    assert main(["review", "approve", f"m{mid}", "--reason", "smear checked", "--actor", "tech-a"]) == 0
    capsys.readouterr()
    assert main(["results"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"m{mid} "))
    assert " approved " in line and " approve " not in line
