"""Portable gates: FlowKit applies our GatingML 2.0 to the same FCS file and counts the same
monocytes, on each instrument flavour (and with the stability and CD14-dim gates in play)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from data_samples.generate import CALIBUR, CANTO, LYRIC, Drift, Interruption, make_patient_tube, write_tube
from gating.strategy import gate_monocytes
from gating.gatingml import GATING, TRANSFORMS, write_gatingml
from pipeline.fcs import read_fcs

FLAVOURS = {"CANTO": CANTO, "CALIBUR": CALIBUR, "LYRIC": LYRIC}


def _ours_and_flowkit(folder: Path, instrument: str, **options) -> tuple[int, int, str]:
    import flowkit

    tube = make_patient_tube(FLAVOURS[instrument], abc=6000.0, seed=21, **options)
    path = write_tube(tube, folder)
    acq = read_fcs(path)
    result = gate_monocytes(acq.events, [c.name for c in acq.channels], acq.roles.as_dict())
    spillover = (acq.spillover.channels, acq.spillover.matrix) if acq.spillover is not None else None
    document = write_gatingml(result, spillover)
    xml = folder / f"{instrument}.xml"
    xml.write_text(document, encoding="utf-8")
    strategy = flowkit.parse_gating_xml(str(xml))
    counted = strategy.gate_sample(flowkit.Sample(str(path))).get_gate_membership("monocytes").sum()
    return result.counts["monocytes"], int(counted), document


@pytest.mark.parametrize("instrument", FLAVOURS)
def test_flowkit_counts_the_same_monocytes(tmp_path: Path, instrument: str) -> None:
    ours, flowkit_count, document = _ours_and_flowkit(tmp_path, instrument)
    assert ours > 3000
    assert flowkit_count == pytest.approx(ours, rel=0.02)
    root = ET.fromstring(document)
    ids = [g.get(f"{{{GATING}}}id") for g in root if g.tag.startswith(f"{{{GATING}}}")]
    assert ids[-1] == "monocytes" and "cells" in ids
    assert ("singlets" in ids) == (instrument != "CALIBUR")        # no FSC-A on the CALIBUR
    matrices = root.findall(f"{{{TRANSFORMS}}}spectrumMatrix")
    assert len(matrices) == (0 if instrument == "CALIBUR" else 1)
    assert len(root.findall(f"{{{TRANSFORMS}}}transformation")) == 2


@pytest.mark.parametrize("instrument, options", [
    ("CANTO", {"cd14_dim_fraction": 0.3}),              # monocytes = OR(CD14-bright, CD14-dim)
    ("LYRIC", {"drift": Drift()}),                      # a Time gate keeps the stable stretch
    ("CANTO", {"interruption": Interruption(at=0.5)}),  # two stable stretches, OR-ed
])
def test_flowkit_follows_the_dim_and_stability_gates(tmp_path: Path, instrument: str, options: dict) -> None:
    ours, flowkit_count, document = _ours_and_flowkit(tmp_path, instrument, **options)
    assert flowkit_count == pytest.approx(ours, rel=0.02)
    assert ("BooleanGate" in document) == ("drift" not in options)
    assert ('id="stable' in document) == ("cd14_dim_fraction" not in options)


def test_no_automatic_gate_is_refused() -> None:
    tube = make_patient_tube(CANTO, abc=6000.0, seed=3, monocyte_fraction=0.0)
    names = [p.name for p in tube.parameters]
    result = gate_monocytes(tube.compensated(), names, tube.roles)
    with pytest.raises(ValueError, match="no automatic monocyte gate"):
        write_gatingml(result)


def test_analyze_writes_the_gates_flowkit_applies(tmp_path: Path, data_samples: Path, capsys) -> None:
    """`mhladr analyze ... --gating-ml OUT.xml`: the file FlowKit reads counts our monocytes."""
    import json

    import flowkit

    from app.cli import main

    sample = data_samples / "PT-0042_D07_HLADR.fcs"
    out = tmp_path / "gates.xml"
    assert main(["analyze", str(sample), "--beads", str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"),
                 "--lots", str(data_samples / "lots.csv"), "--gating-ml", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gating_ml"] == str(out)
    counted = flowkit.parse_gating_xml(str(out)).gate_sample(flowkit.Sample(str(sample)))
    assert counted.get_gate_membership("monocytes").sum() == pytest.approx(doc["monocytes"], rel=0.02)
    assert main(["analyze", str(sample), "--beads", str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"),
                 "--gating-ml", str(tmp_path / "gates.txt")]) == 2
    assert capsys.readouterr().err.strip().endswith("give a file name ending in .xml")
