"""The committed sample set: a March 2026 screening scenario on two cytometers.

Four acquisition days (two per instrument), each with its own QuantiBRITE tube; ten patient
tubes whose PE voltage and day match a bead tube of their instrument. The clinical registry
tells the screening story (see ``REGISTRY`` and the generated README.md).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from data_samples.generate import (ABC_DEFINITION, THRESHOLD, WINDOW, Tube, make_bead_tube,
                                   make_patient_tube, write_tube)
from data_samples.instruments import CALIBUR, CANTO, LYRIC, Instrument

DEFAULT_SEED = 20260312
LOTS = {"lotA": (474.0, 5359.0, 23843.0, 62336.0), "lotB": (638.0, 6930.0, 31008.0, 67601.0)}


@dataclass(frozen=True)
class Day:
    """One acquisition day on one instrument, calibrated with one bead tube."""

    instrument: Instrument
    day: date
    lot: str
    pe_voltage: float
    beads_at: str          # HH:MM


@dataclass(frozen=True)
class PatientTube:
    patient_id: str
    day: Day
    icu_admission: date
    abc: float
    at: str                # HH:MM
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryRow:
    patient_id: str
    icu_admission: str     # ISO date-time
    sofa_24h: int
    mechanical_ventilation: str
    exclusion: str
    randomized_at: str
    story: str             # what a coordinator would say (README only, not in the CSV)


CANTO_12 = Day(CANTO, date(2026, 3, 12), "lotA", 450.0, "08:30")
CALIBUR_13 = Day(CALIBUR, date(2026, 3, 13), "lotA", 550.0, "08:15")
CANTO_16 = Day(CANTO, date(2026, 3, 16), "lotB", 470.0, "08:40")
CALIBUR_17 = Day(CALIBUR, date(2026, 3, 17), "lotB", 550.0, "08:20")
DAYS = (CANTO_12, CALIBUR_13, CANTO_16, CALIBUR_17)

PATIENT_TUBES = (
    PatientTube("PT-0042", CANTO_12, date(2026, 3, 5), 22_000.0, "09:40"),
    PatientTube("PT-0044", CANTO_12, date(2026, 3, 4), 4_500.0, "10:05", {"cd14_dim_fraction": 0.25}),
    PatientTube("PT-0043", CALIBUR_13, date(2026, 3, 7), 2_500.0, "09:00"),
    PatientTube("PT-0045", CALIBUR_13, date(2026, 3, 8), 7_500.0, "09:20"),
    PatientTube("PT-0047", CALIBUR_13, date(2026, 3, 11), 6_000.0, "09:45"),
    PatientTube("PT-0046", CANTO_16, date(2026, 3, 7), 8_700.0, "09:30"),
    PatientTube("PT-0048", CANTO_16, date(2026, 3, 10), 3_500.0, "09:55", {"bimodal": (0.45, 21_000.0)}),
    PatientTube("PT-0047", CALIBUR_17, date(2026, 3, 11), 7_000.0, "09:10"),
    PatientTube("PT-0049", CALIBUR_17, date(2026, 3, 6), 3_800.0, "09:35",
                {"immature_granulocyte_fraction": 0.06, "marker_labels": True}),
    PatientTube("PT-0052", CALIBUR_13, date(2026, 3, 7), 6_500.0, "10:10", {"monocyte_fraction": 0.035}),
)

REGISTRY = (
    RegistryRow("PT-0042", "2026-03-05T16:40", 9, "yes", "", "",
                "in window, normal mHLA-DR: not immunosuppressed"),
    RegistryRow("PT-0043", "2026-03-07T03:15", 11, "yes", "", "2026-03-14T15:30",
                "severe immunoparalysis in window; randomized the day after the sample"),
    RegistryRow("PT-0044", "2026-03-04T22:05", 8, "yes", "pregnancy", "",
                "low mHLA-DR (CD14-dim monocyte subset) but excluded: pregnancy"),
    RegistryRow("PT-0045", "2026-03-08T11:50", 7, "yes", "", "",
                "day 5, just under the cut-off: eligible, value near 8,000 (show uncertainty)"),
    RegistryRow("PT-0046", "2026-03-07T09:25", 6, "yes", "", "",
                "day 9, just above the cut-off: pending until day 10, then not eligible"),
    RegistryRow("PT-0047", "2026-03-11T19:10", 10, "yes", "", "",
                "day 2 sample is too early; the day 6 sample is below 8,000: eligible"),
    RegistryRow("PT-0048", "2026-03-10T07:45", 4, "yes", "", "",
                "SOFA 4 (< 6): not eligible; bimodal HLA-DR makes the median fragile"),
    RegistryRow("PT-0049", "2026-03-06T13:30", 12, "no", "", "",
                "high-flow oxygen, not ventilated, and sampled on day 11: not eligible"),
    RegistryRow("PT-0052", "2026-03-07T18:20", 9, "yes", "", "",
                "monocytopenia: about 1,400 monocytes (fewer than 2,000), so QC asks for a technician's "
                "review; pending until it is approved, then eligible (6,5xx AB/C on day 6)"),
)


def _at(d: date, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{d.isoformat()}T{hhmm}")


def build_tubes(seed: int = DEFAULT_SEED) -> list[Tube]:
    """Every tube of the set, in a fixed order, each with its own seed."""
    tubes = [make_bead_tube(d.instrument, LOTS[d.lot], events=20_000,
                            seed=seed + i, lot=d.lot, pe_voltage=d.pe_voltage, acquired=_at(d.day, d.beads_at))
             for i, d in enumerate(DAYS)]
    for j, p in enumerate(PATIENT_TUBES):
        tubes.append(make_patient_tube(
            p.day.instrument, abc=p.abc, events=40_000, seed=seed + 100 + j, pe_voltage=p.day.pe_voltage,
            patient_id=p.patient_id, collection_date=p.day.day, icu_admission=p.icu_admission,
            acquired=_at(p.day.day, p.at), **p.options))
    return tubes


def lots_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["lot", "low", "med_low", "med_high", "high"])
    for lot, values in LOTS.items():
        writer.writerow([lot, *(f"{v:g}" for v in values)])
    return out.getvalue()


def registry_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["patient_id", "icu_admission", "sofa_24h", "mechanical_ventilation", "exclusion",
                     "randomized_at"])
    for r in REGISTRY:
        writer.writerow([r.patient_id, r.icu_admission, r.sofa_24h, r.mechanical_ventilation, r.exclusion,
                         r.randomized_at])
    return out.getvalue()


def truth_json(tubes: list[Tube], seed: int) -> str:
    doc = {
        "abc_definition": ABC_DEFINITION,
        "threshold": THRESHOLD,
        "window": list(WINDOW),
        "categories": {"normal": ">= 15000", "reduced": "8000 to < 15000",
                       "immunosuppressed": "5000 to < 8000", "severe": "< 5000"},
        "seed": seed,
        "files": {t.filename: t.truth for t in tubes},
    }
    return json.dumps(doc, indent=2) + "\n"


def readme(tubes: list[Tube], seed: int) -> str:
    beads = [t for t in tubes if t.kind == "beads"]
    samples = [t for t in tubes if t.kind == "sample"]
    lines = [
        "# data_samples — synthetic QuantiBRITE PE and HLA-DR/CD14 tubes",
        "",
        "Everything in this folder except the Python modules is generated; do not edit by hand.",
        "Regenerate (byte-identical for the same seed and numpy version) with:",
        "",
        "    python -m data_samples            # rewrites this folder",
        "    python -m data_samples --out DIR  # or writes elsewhere",
        "",
        f"Seed {seed}. tests/test_generator.py checks that the committed files equal a fresh run.",
        "",
        "## Files",
        "",
        "- `BEADS_<day>_<lot>_<instrument>.fcs` — QuantiBRITE PE bead tube of an acquisition day "
        "(keywords `BEAD LOT`, `TUBE NAME` = `QuantiBRITE PE`).",
        "- `PT-<id>_D<icu day>_HLADR.fcs` — lysed whole blood, anti-HLA-DR PE (L243, 1 PE/antibody) + "
        "anti-CD14 PerCP-Cy5.5 (keywords `PATIENT ID`, `SAMPLE ID`, `COLLECTION DATE`, "
        "`ICU ADMISSION DATE`, `TUBE NAME` = `HLA-DR/CD14`).",
        "- `lots.csv` — PE molecules per bead of each lot (`lot,low,med_low,med_high,high`).",
        "- `registry.csv` — clinical facts per patient "
        "(`patient_id,icu_admission,sofa_24h,mechanical_ventilation,exclusion,randomized_at`).",
        "- `truth.json` — the ground truth of every file, computed from what the generator drew.",
        "",
        "## Instruments",
        "",
        f"- CANTO: {CANTO.cytometer} (serial `$CYTSN` {CANTO.serial}), FCS 3.1, 32-bit float, linear "
        "0..262,144, FSC-A/H, SSC-A/H, PE-A (`HLA-DR`), PerCP-Cy5-5-A (`CD14`), Time; uncompensated "
        "data with `$SPILLOVER` (PE -> PerCP-Cy5.5 15 %, PerCP-Cy5.5 -> PE 2 %).",
        f"- CALIBUR: {CALIBUR.cytometer} (serial `CYTNUM` {CALIBUR.serial}), FCS 2.0, 16-bit words holding "
        "10-bit channels, FL1-4 on 4-decade log amplifiers (`$PnE` 4,0: value = 10^(4*ch/1024)), linear "
        "FSC-H/SSC-H, no FSC-A (no doublet discrimination), compensated in hardware (no spillover "
        "keyword). FL2 = PE, FL3 = PerCP-Cy5.5; `$PnS` is empty except in PT-0049 "
        "(`HLA-DR PE`, `CD14 PerCP-Cy5.5`). `$DATE` is CellQuest's dd-Mmm-yy; no Time channel.",
        f"- LYRIC (generator only, not in this folder): {LYRIC.cytometer}-like (serial `$CYTSN` "
        f"{LYRIC.serial}), FCS 3.1 big-endian floats (`$BYTEORD` 4,3,2,1) on a 0..1,048,576 scale, FSC-A/H, "
        "SSC-A/H, FITC-A, PE-A, PerCP-Cy5.5-A, APC-A, Time; roles from the `$PnS` markers (`HLA-DR`, "
        "`CD14`); `$SPILLOVER` over the four fluorescence channels written in another order than the "
        "data's (PerCP-Cy5.5, APC, FITC, PE).",
        "",
        "The true PE response of each instrument is log10(molecules) = a*log10(F) + b at its reference "
        "voltage (CANTO a = 1.02 at 450 V, CALIBUR a = 0.97 at 550 V), the gain scaling as "
        "(V/V0)^7 with the PE voltage; `slope`/`intercept` in truth.json are the curve at the tube's "
        "voltage, F being the compensated linear PE value.",
        "",
        "## Ground truth",
        "",
        f"`abc` = {ABC_DEFINITION}. `below_threshold` = abc < 8,000; `category`: >= 15,000 normal, "
        "8,000-15,000 reduced, 5,000-8,000 immunosuppressed, < 5,000 severe. `icu_day` = calendar days "
        "from ICU admission (day 0) to collection; `in_window` = 5 <= icu_day <= 10. "
        "`monocyte_pe_median` is the median compensated PE of those monocytes as written (with "
        "autofluorescence and noise) and `abc_from_true_curve` converts it with the true curve: what "
        "a perfect gate and calibration would report. Bead levels give `median_fluorescence` of the "
        "singlet beads of each level in the written PE channel (decoded, linear) and its compensated "
        "value.",
        "",
        "| file | instrument | day | PE V | lot | abc | category | icu_day | in window | monocytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in samples:
        tr = t.truth
        lot = next(b.truth["lot"] for b in beads if b.instrument is t.instrument
                   and b.truth["acquired"][:10] == tr["acquired"][:10])
        lines.append(f"| {t.filename} | {tr['instrument']} | {tr['collection_date']} | {tr['pe_voltage']:g} | "
                     f"{lot} | {tr['abc']:.0f} | {tr['category']} | {tr['icu_day']} | "
                     f"{'yes' if tr['in_window'] else 'no'} | {tr['n_monocytes']} |")
    lines += ["", "| bead file | instrument | PE V | lot | median PE per level (written) |",
              "|---|---|---|---|---|"]
    for t in beads:
        tr = t.truth
        medians = " / ".join(f"{lv['median_fluorescence']:.4g}" for lv in tr["levels"])
        lines.append(f"| {t.filename} | {tr['instrument']} | {tr['pe_voltage']:g} | {tr['lot']} | {medians} |")
    lines += [
        "",
        "## What else the generator makes (seeded; used by the tests, not committed)",
        "",
        "`make_patient_tube` (data_samples/generate.py) also simulates what septic blood and real "
        "acquisitions bring: CD14-dim monocytes at the monocytes' own scatter (`cd14_dim_fraction`, "
        "with `cd14_dim_hladr` times their HLA-DR), monocytes that shed CD14 (`monocyte_cd14`), a left "
        "shift (`immature_granulocyte_fraction`: CD14 dim to intermediate `immature_granulocyte_cd14`, "
        "HLA-DR negative, SSC `immature_granulocyte_ssc` between monocytes and neutrophils), eosinophils "
        "(`eosinophil_fraction`: high SSC, CD14 negative, bright autofluorescence), lyse-no-wash tubes "
        "(`lyse_no_wash`: red-cell ghosts and platelets), monocytopenia (`monocyte_fraction`), and two "
        "acquisition faults along Time (data_samples/faults.py): `Drift` (fluorescence fading over the "
        "end of the run) and `Interruption` (a pause, then a burst). Their truth adds `abc_cd14_bright` "
        "(the median of the CD14-bright monocytes alone), the population counts and the faults.",
        "",
        "Set-up and pre-analytical faults (data_samples/kinds.py, `faulty_tube(kind, instrument, ...)`, "
        "truth `fault` and `expected_qc`): `no_spillover` (an export that lost its `$SPILLOVER`; also "
        "`without_spillover(tube)`), `late_hours` (drawn 9 h before acquisition: `COLLECTION TIME` "
        "keyword, `collected_at=` of `make_patient_tube`), `late_days` (acquired 2 days after the draw "
        "date), `failed_cd14` (monocytes without CD14 stain), `bead_carryover` (QuantiBRITE beads in a "
        "patient tube, `carryover_beads=`) and `above_top_bead` (post-IFN-gamma, 75,000 AB/C).",
    ]
    lines += ["", "## Registry story", ""]
    lines += [f"- {r.patient_id}: {r.story}." for r in REGISTRY]
    lines += ["", "Patient IDs are pseudonymous; no names appear anywhere.", ""]
    return "\n".join(lines)


def write_sample_set(out: Path, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write every tube, truth.json, lots.csv, registry.csv and README.md into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tubes = build_tubes(seed)
    written = [write_tube(t, out / t.filename) for t in tubes]
    for name, text in (("truth.json", truth_json(tubes, seed)), ("lots.csv", lots_csv()),
                       ("registry.csv", registry_csv()), ("README.md", readme(tubes, seed))):
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
