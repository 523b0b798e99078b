"""The operational-qualification reference set (``mhladr validate``): tubes with known truth made
by this generator at release, written with their checksums and acceptance criteria into
``pipeline/validation/reference/`` (shipped as package data, so a lab's validation needs neither
this generator nor the repository).

Regenerate at release (byte-identical for the same seed and numpy version)::

    python -m data_samples.oq_reference        # or: make oq-reference

``cases.json`` lists each case: the files it needs, what the pipeline must find (status, QC,
error code, AB/C within a stated %, screening status) and, for cases waiting for a generator
kind or a pipeline check not released yet, ``"enabled": false`` with the reason. Add a case by
adding a row to :data:`CASES` (and its tube to :func:`tubes`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Sequence

from data_samples.generate import Tube, fcs_bytes, make_bead_tube, make_patient_tube
from data_samples.instruments import CALIBUR, CANTO, LYRIC
from data_samples.kinds import without_spillover
from data_samples.sample_set import LOTS

SEED = 20261207
OUT = Path(__file__).resolve().parents[1] / "pipeline" / "validation" / "reference"
ABC_TOLERANCE = 0.10          # |AB/C - truth| / truth: within 10 % (inter-laboratory CV 15-25 %)
ADMISSION = {"PT-0101": "2026-03-05T10:00", "PT-0102": "2026-03-06T10:00", "PT-0103": "2026-03-06T10:00",
             "PT-0104": "2026-03-06T10:00", "PT-0105": "2026-03-07T10:00", "PT-0106": "2026-03-06T10:00",
             "PT-0107": "2026-03-06T10:00", "PT-0108": "2026-03-06T10:00", "PT-0109": "2026-03-06T10:00",
             "PT-0110": "2026-03-06T10:00", "PT-0111": "2026-03-05T10:00"}


@dataclass(frozen=True)
class Case:
    """One OQ check: its files and the expected outcome of the file named ``tube``."""

    name: str
    what: str
    tube: str
    expect: dict[str, Any]
    files: tuple[str, ...] = ()
    enabled: bool = True
    pending: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _patient(instrument: Any, pid: str, day: date, abc: float, seed: int, **kw: Any) -> Tube:
    admitted = date.fromisoformat(ADMISSION[pid][:10])
    return make_patient_tube(instrument, abc=abc, events=15_000, seed=seed, monocyte_fraction=kw.pop("mono", 0.2),
                             patient_id=pid, collection_date=day, icu_admission=admitted,
                             filename=f"{pid}_D{(day - admitted).days:02d}_HLADR.fcs", **kw)


def tubes() -> dict[str, bytes]:
    """File name -> content of every reference tube (seeded)."""
    d12, d13, d14 = date(2026, 3, 12), date(2026, 3, 13), date(2026, 3, 14)
    made = [
        make_bead_tube(CANTO, LOTS["lotA"], events=10_000, seed=SEED, lot="lotA", acquired=datetime(2026, 3, 12, 8),
                       filename="BEADS_2026-03-12_lotA_CANTO.fcs"),
        make_bead_tube(CALIBUR, LOTS["lotB"], events=10_000, seed=SEED + 1, lot="lotB",
                       acquired=datetime(2026, 3, 13, 8), filename="BEADS_2026-03-13_lotB_CALIBUR.fcs"),
        make_bead_tube(LYRIC, LOTS["lotA"], events=10_000, seed=SEED + 2, lot="lotA", acquired=datetime(2026, 3, 14, 8),
                       filename="BEADS_2026-03-14_lotA_LYRIC.fcs"),
        _patient(CANTO, "PT-0101", d12, 21_000, SEED + 10),
        _patient(CANTO, "PT-0102", d12, 7_400, SEED + 11),
        _patient(CANTO, "PT-0103", d12, 8_700, SEED + 12),
        _patient(CALIBUR, "PT-0104", d13, 3_000, SEED + 13),
        _patient(LYRIC, "PT-0105", d14, 12_000, SEED + 14),
        _patient(CANTO, "PT-0107", d12, 6_000, SEED + 16, with_cd14=False),
        _patient(CANTO, "PT-0108", d12, 6_000, SEED + 17, pe_voltage=520.0),
        _patient(CANTO, "PT-0109", d12, 6_000, SEED + 18, mono=0.02),
        without_spillover(_patient(CANTO, "PT-0110", d12, 6_000, SEED + 19)),
        _patient(CANTO, "PT-0111", d12 - timedelta(days=1), 6_000, SEED + 20, acquired=datetime(2026, 3, 12, 9)),
    ]
    files = {t.filename: fcs_bytes(t) for t in made}
    whole = fcs_bytes(_patient(CANTO, "PT-0106", d12, 6_000, SEED + 15))
    files["PT-0106_D06_HLADR.fcs"] = whole[: len(whole) * 6 // 10]           # cut: a copy that stopped
    truth = {t.filename: t.truth for t in made}
    files["truth.json"] = json.dumps(truth, indent=1, sort_keys=True, default=str).encode()
    return files


def cases(truth: dict[str, Any]) -> list[Case]:
    """The acceptance criteria, from the truth of the generated tubes."""
    def abc(name: str) -> float:
        return float(truth[name]["abc"])

    return [
        Case("canto_normal", "FACSCanto II (FCS 3.1 float, spillover), lot A, normal value", "PT-0101_D07_HLADR.fcs",
             {"status": "measured", "qc": "pass", "abc": abc("PT-0101_D07_HLADR.fcs"), "below_threshold": False,
              "screening": "not_eligible"}),
        Case("near_threshold_below", "just under the 8,000 cut-off: eligible", "PT-0102_D06_HLADR.fcs",
             {"status": "measured", "qc": "pass", "abc": abc("PT-0102_D06_HLADR.fcs"), "below_threshold": True,
              "screening": "eligible"}),
        Case("near_threshold_above", "just over the 8,000 cut-off: not eligible once the window closed",
             "PT-0103_D06_HLADR.fcs",
             {"status": "measured", "qc": "pass", "abc": abc("PT-0103_D06_HLADR.fcs"), "below_threshold": False,
              "screening": "not_eligible"}),
        Case("calibur_severe", "FACSCalibur (FCS 2.0, 10-bit log channels), lot B, severe", "PT-0104_D07_HLADR.fcs",
             {"status": "measured", "qc": "pass", "abc": abc("PT-0104_D07_HLADR.fcs"), "below_threshold": True,
              "screening": "eligible"}),
        Case("lyric_reduced", "FACSLyric-like (big-endian floats, reordered spillover), lot A", "PT-0105_D07_HLADR.fcs",
             {"status": "measured", "qc": "pass", "abc": abc("PT-0105_D07_HLADR.fcs"), "below_threshold": False,
              "screening": "not_eligible"}),
        Case("beads_lotA_canto", "bead lot A on the Canto: four levels, curve QC", "BEADS_2026-03-12_lotA_CANTO.fcs",
             {"status": "calibrated", "qc": "pass", "lot": "lotA"}),
        Case("beads_lotB_calibur", "bead lot B on the Calibur: four levels, curve QC",
             "BEADS_2026-03-13_lotB_CALIBUR.fcs", {"status": "calibrated", "qc": "pass", "lot": "lotB"}),
        Case("beads_lotA_lyric", "bead lot A on the Lyric: four levels, curve QC", "BEADS_2026-03-14_lotA_LYRIC.fcs",
             {"status": "calibrated", "qc": "pass", "lot": "lotA"}),
        Case("truncated", "a file cut short: rejected, error code truncated", "PT-0106_D06_HLADR.fcs",
             {"status": "rejected", "code": "truncated"}),
        Case("wrong_panel", "a tube without CD14: rejected, error code wrong_panel", "PT-0107_D06_HLADR.fcs",
             {"status": "rejected", "code": "wrong_panel"}),
        Case("voltage_mismatch", "PE at 520 V, beads at 450 V: waits, naming both voltages", "PT-0108_D06_HLADR.fcs",
             {"status": "pending_calibration", "reason_contains": ["520", "450"]}),
        Case("too_few_monocytes", "about 300 monocytes: QC fail, never counted", "PT-0109_D06_HLADR.fcs",
             {"status": "qc_fail", "qc": "fail", "below_threshold": None, "screening": "not_eligible"}),
        Case("missing_compensation", "FCS 3.1 area channels without $SPILLOVER: QC review naming it",
             "PT-0110_D06_HLADR.fcs", {"status": "measured", "qc": "review", "reason_contains": ["no compensation"]}),
        Case("late_tube", "acquired the day after the draw: QC review naming the delay", "PT-0111_D06_HLADR.fcs",
             {"status": "measured", "qc": "review", "reason_contains": ["1 day after the draw"]}),
    ]


def registry() -> str:
    lines = ["patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,randomized_at"]
    lines += [f"{pid},{at},8,yes,," for pid, at in sorted(ADMISSION.items())]
    return "\n".join(lines) + "\n"


def lots() -> str:
    return "lot,low,med_low,med_high,high\n" + "".join(
        f"{name},{','.join(f'{v:g}' for v in values)}\n" for name, values in sorted(LOTS.items()))


def write(out: Path = OUT) -> list[Path]:
    """Write the tubes, lots.csv, registry.csv and cases.json (with every file's SHA-256)."""
    out.mkdir(parents=True, exist_ok=True)
    files = tubes()
    truth = json.loads(files["truth.json"])
    files["lots.csv"] = lots().encode()
    files["registry.csv"] = registry().encode()
    written = []
    for name, content in sorted(files.items()):
        (out / name).write_bytes(content)
        written.append(out / name)
    doc = {"seed": SEED, "abc_tolerance": ABC_TOLERANCE,
           "files": {name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())},
           "cases": [{"name": c.name, "what": c.what, "tube": c.tube, "expect": c.expect, "enabled": c.enabled,
                      "pending": c.pending} for c in cases(truth)]}
    (out / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")
    return [*written, out / "cases.json"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
