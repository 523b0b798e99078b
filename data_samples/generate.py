"""Deterministic synthetic QuantiBRITE PE bead tubes and HLA-DR/CD14 patient tubes.

``make_bead_tube`` and ``make_patient_tube`` simulate one acquisition on a simulated cytometer
(:mod:`data_samples.instruments`) from seeded particle populations
(:mod:`data_samples.populations`) and record the ground truth computed from what was generated;
``write_tube`` writes it as FCS 3.1 float (FACSCanto II; FACSLyric-like big-endian) or FCS 2.0
10-bit log (FACSCalibur).
``python -m data_samples [--out DIR]`` rewrites the committed sample set (:mod:`data_samples.__main__`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from data_samples import populations as pop
from data_samples.fcs_writer import (FcsParameter, fcs20_int16_bytes, fcs31_float_bytes,
                                     spillover_value, write_bytes)
from data_samples.faults import Drift, Interruption
from data_samples.instruments import (CALIBUR, CANTO, INSTRUMENTS, LYRIC, ChannelSpec, Instrument,
                                      decode_channels, encode_channels)

__all__ = ["CALIBUR", "CANTO", "INSTRUMENTS", "LYRIC", "Drift", "Instrument", "Interruption", "Tube",
           "category", "make_bead_tube", "make_patient_tube", "write_tube", "THRESHOLD", "WINDOW"]

THRESHOLD = 8_000.0                    # trial cut-off, AB/C
WINDOW = (5, 10)                       # ICU days, inclusive
TIMESTEP = 0.01                        # seconds per Time tick (FACSDiva)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ABC_DEFINITION = ("median of the true PE molecules (= HLA-DR antibodies bound, 1 PE per antibody) "
                  "of the singlet monocytes generated in the tube (CD14-bright and CD14-dim), "
                  "before autofluorescence, spillover, noise and quantisation")


def category(abc: float) -> str:
    """Reference class of an mHLA-DR value (AB/C): >= 15,000 normal; 8,000-15,000 reduced;
    5,000-8,000 immunosuppressed; < 5,000 severe (immunoparalysis)."""
    if abc >= 15_000:
        return "normal"
    if abc >= THRESHOLD:
        return "reduced"
    if abc >= 5_000:
        return "immunosuppressed"
    return "severe"


@dataclass(frozen=True, eq=False)
class Tube:
    """One simulated acquisition: events, channel metadata, keywords and ground truth.

    ``events`` are linear values as the instrument represents them (saturated, log floor
    applied) before the file's own encoding: float32 rounding (FCS 3.1) or 10-bit channel
    numbers (FCS 2.0). ``particles`` holds each event's population and true molecules.
    """

    instrument: Instrument
    kind: str                                   # 'beads' or 'sample'
    parameters: tuple[FcsParameter, ...]
    roles: dict[str, str]                       # role -> $PnN
    events: np.ndarray
    particles: pop.Particles
    spillover: tuple[tuple[str, ...], np.ndarray] | None
    keywords: dict[str, str]
    truth: dict[str, object]
    filename: str
    write_spillover: bool = True                # False: the export lost its $SPILLOVER (data stay uncompensated)

    def index(self, role: str) -> int:
        return [p.name for p in self.parameters].index(self.roles[role])

    def decoded(self) -> np.ndarray:
        """What an exact reader returns: float32-rounded floats or decoded channel numbers."""
        if self.instrument.is_log:
            return decode_channels(self.parameters, encode_channels(self.parameters, self.events))
        return self.events.astype(np.float32).astype(np.float64)

    def compensated(self) -> np.ndarray:
        """``decoded()`` with the spillover removed (data @ inverse(spillover))."""
        data = self.decoded()
        if self.spillover is None:
            return data
        names, matrix = self.spillover
        cols = [[p.name for p in self.parameters].index(n) for n in names]
        data[:, cols] = data[:, cols] @ np.linalg.inv(matrix)
        return data


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{float(x):.{digits}g}")


def _fcs_date(instrument: Instrument, d: date) -> str:
    """$DATE as FACSDiva (dd-MMM-yyyy, upper case) or CellQuest (dd-Mmm-yy) writes it."""
    mon = _MONTHS[d.month - 1]
    if instrument.is_log:
        return f"{d.day:02d}-{mon}-{d.year % 100:02d}"
    return f"{d.day:02d}-{mon.upper()}-{d.year}"


def _acquire(instrument: Instrument, specs: tuple[ChannelSpec, ...], particles: pop.Particles,
             pe_voltage: float, rng: np.random.Generator, drift: Drift | None = None,
             interruption: Interruption | None = None) -> np.ndarray:
    """Detector values (linear, clipped to the instrument's scale) for each particle, the
    particles being acquired in their given order (Time increases with the index)."""
    n = len(particles)
    af = particles.autofluorescence
    true = {"pe": instrument.pe_signal(particles.pe_molecules + pop.PE_AUTOFLUORESCENCE * af, pe_voltage),
            "cd14": instrument.percp_per_molecule * (particles.cd14_molecules + pop.PERCP_AUTOFLUORESCENCE * af),
            "fl1": 3.0 * af, "fl4": 1.5 * af}
    if drift is not None:
        fade = drift.factor(n)
        true |= {role: true[role] * fade for role in drift.roles}
    if instrument.spillover is not None:
        roles = instrument.spillover_roles
        mixed = np.column_stack([true[r] for r in roles]) @ np.array(instrument.spillover)
        true |= {r: mixed[:, j] for j, r in enumerate(roles)}
    scale = instrument.scatter_scale
    intervals = rng.exponential(1.0 / instrument.events_per_second, n)
    if interruption is not None:
        intervals = interruption.intervals(intervals)
    ticks = np.cumsum(intervals) / TIMESTEP
    values = {
        "fsc_a": particles.fsc * scale, "fsc_h": particles.fsc_h * scale,
        "ssc_a": particles.ssc * scale, "ssc_h": particles.ssc_h * scale,
        "pe": instrument.detect(true["pe"], instrument.gain(pe_voltage), rng),
        "cd14": instrument.detect(true["cd14"], 1.0, rng),
        "fl1": instrument.detect(true["fl1"], 1.0, rng),
        "fl4": instrument.detect(true["fl4"], 1.0, rng),
        "time": ticks,
    }
    return np.column_stack([instrument.clip(ch, values[ch.role]) for ch in specs])


def _build(instrument: Instrument, kind: str, particles: pop.Particles, pe_voltage: float,
           rng: np.random.Generator, with_cd14: bool, marker_labels: bool | None,
           keywords: dict[str, str], acquired: datetime, filename: str,
           drift: Drift | None = None, interruption: Interruption | None = None) -> Tube:
    particles = particles.take(rng.permutation(len(particles)))
    specs = instrument.specs(with_cd14)
    labels = instrument.marker_labels if marker_labels is None else marker_labels
    params = instrument.parameters(specs, pe_voltage, labels)
    events = _acquire(instrument, specs, particles, pe_voltage, rng, drift, interruption)
    spill = None
    if instrument.spillover is not None:
        acquired_roles = {ch.role for ch in specs}
        kept = [j for j, r in enumerate(instrument.spillover_roles) if r in acquired_roles]
        names = tuple(instrument.channel_by_role(instrument.spillover_roles[j]).name for j in kept)
        spill = (names, np.array(instrument.spillover)[np.ix_(kept, kept)])
    seconds = len(particles) / instrument.events_per_second
    if instrument.is_log:
        head = {"$CYT": instrument.cytometer, "CYTNUM": instrument.serial, "CREATOR": instrument.creator,
                "$SYS": "Mac OS X 10.4.11"}
    else:
        seconds = float(events[-1, [c.role for c in specs].index("time")]) * TIMESTEP if len(events) else 0.0
        head = {"$CYT": instrument.cytometer, "$CYTSN": instrument.serial, "CREATOR": instrument.creator,
                "$TIMESTEP": f"{TIMESTEP:g}"}
    head |= {"$DATE": _fcs_date(instrument, acquired.date()), "$BTIM": acquired.strftime("%H:%M:%S"),
             "$ETIM": (acquired + timedelta(seconds=int(np.ceil(seconds)))).strftime("%H:%M:%S")}
    return Tube(instrument=instrument, kind=kind, parameters=params,
                roles={ch.role: ch.name for ch in specs}, events=events, particles=particles,
                spillover=spill, keywords=head | keywords, truth={}, filename=filename)


def _instrument_truth(instrument: Instrument, pe_voltage: float) -> dict[str, object]:
    slope, intercept = instrument.curve(pe_voltage)
    return {"instrument": instrument.key, "cytometer": instrument.cytometer, "serial": instrument.serial,
            "fcs_version": instrument.fcs_version, "pe_channel": instrument.channel_by_role("pe").name,
            "pe_voltage": pe_voltage, "slope": _sig(slope), "intercept": _sig(intercept),
            "curve": "log10(PE molecules) = slope * log10(F) + intercept, F = compensated linear PE"}


def _counts(rng: np.random.Generator, total: int, fractions: Sequence[float]) -> list[int]:
    p = np.asarray(fractions, dtype=float)
    return [int(c) for c in rng.multinomial(total, p / p.sum())]


def make_bead_tube(instrument: Instrument, lot_values: Sequence[float], *, events: int = 20_000,
                   seed: int = 0, lot: str = "lotA", missing_levels: Sequence[int] = (),
                   pe_voltage: float | None = None, saturate_top: bool = False,
                   level_fractions: Sequence[float] | None = None, bead_cv: float = 0.03,
                   blank_fraction: float = 0.0, doublet_fraction: float = 0.04,
                   debris_fraction: float = 0.03, acquired: datetime = datetime(2026, 3, 12, 8, 30),
                   marker_labels: bool | None = None, filename: str | None = None) -> Tube:
    """A QuantiBRITE PE tube: one bead population per lot value (PE molecules per bead),
    lognormal with ``bead_cv``, plus doublets, debris and an optional blank population.

    ``missing_levels`` (0-based) are left out; ``saturate_top`` raises the PE voltage until
    the brightest level lies above the scale's top (so it piles up at full scale).
    """
    values = [float(v) for v in lot_values]
    if saturate_top:
        if pe_voltage is not None:
            raise ValueError("saturate_top chooses the PE voltage; do not pass pe_voltage too")
        top = float(instrument.pe_signal(np.array([max(values)]), instrument.pe_voltage)[0])
        full = instrument.log_max() if instrument.is_log else instrument.range - 1.0
        pe_voltage = float(np.ceil(instrument.pe_voltage * (1.3 * full / top) ** (1 / instrument.voltage_exponent)))
    voltage = float(pe_voltage if pe_voltage is not None else instrument.pe_voltage)
    rng = np.random.default_rng(seed)
    weights = list(level_fractions) if level_fractions is not None else [1.0] * len(values)
    weights = [0.0 if i in missing_levels else w for i, w in enumerate(weights)]
    singlet_fraction = 1.0 - doublet_fraction - debris_fraction - blank_fraction
    n_single = _counts(rng, events, [singlet_fraction, blank_fraction, doublet_fraction, debris_fraction])
    level_n = _counts(rng, n_single[0], weights)
    parts = [pop.beads(rng, n, v, bead_cv, f"bead_{i + 1}") for i, (n, v) in enumerate(zip(level_n, values))]
    parts.append(pop.beads(rng, n_single[1], 0.0, bead_cv, "bead_blank"))
    singlets = pop.concat(parts)
    pieces = [singlets, pop.debris(rng, n_single[3])]
    if n_single[2]:
        pieces.append(pop.doublets(rng, singlets, n_single[2]))
    name = filename or f"BEADS_{acquired.date().isoformat()}_{lot}_{instrument.key}.fcs"
    keywords = {"TUBE NAME": "QuantiBRITE PE", "SAMPLE ID": f"BEADS {lot}", "BEAD LOT": lot,
                "EXPERIMENT NAME": f"mHLA-DR {acquired.date().isoformat()}"}
    tube = _build(instrument, "beads", pop.concat(pieces), voltage, rng, True, marker_labels,
                     keywords, acquired, name)
    pe_col, comp = tube.decoded()[:, tube.index("pe")], tube.compensated()[:, tube.index("pe")]
    top_value = instrument.log_max() if instrument.is_log else instrument.range - 1.0
    levels = []
    for i, v in enumerate(values):
        sel = tube.particles.label == f"bead_{i + 1}"
        found = bool(sel.any())
        median = float(np.median(pe_col[sel])) if found else None
        levels.append({
            "level": i + 1, "bead_value": v, "events": int(sel.sum()), "missing": i in missing_levels,
            "median_fluorescence": _sig(median) if found else None,
            "median_fluorescence_compensated": _sig(float(np.median(comp[sel]))) if found else None,
            "cv": _sig(float(np.std(pe_col[sel]) / np.mean(pe_col[sel])), 4) if found else None,
            "saturated": bool(found and median >= 0.999 * top_value),
        })
    blank = tube.particles.label == "bead_blank"
    truth = {"file": name, "kind": "beads", "lot": lot, "bead_values": values,
             "acquired": acquired.isoformat(), **_instrument_truth(instrument, voltage), "levels": levels,
             "missing_levels": sorted(int(i) + 1 for i in missing_levels),
             "blank": {"events": int(blank.sum()),
                       "median_fluorescence": _sig(float(np.median(pe_col[blank]))) if blank.any() else None},
             "doublets": int((tube.particles.label == "doublet").sum()),
             "debris": int((tube.particles.label == "debris").sum()), "events": int(len(tube.events))}
    tube.truth.update(truth)
    return tube


def make_patient_tube(instrument: Instrument, *, abc: float, events: int = 40_000, seed: int = 0,
                      monocyte_fraction: float = 0.10, monocyte_cd14: float = pop.MONOCYTE_CD14,
                      hladr_sigma: float = 0.42,
                      cd14_dim_fraction: float = 0.0, cd14_dim_hladr: float = 1.0,
                      bimodal: tuple[float, float] | None = None,
                      immature_granulocyte_fraction: float = 0.0,
                      immature_granulocyte_cd14: float = pop.IMMATURE_GRANULOCYTE_CD14,
                      immature_granulocyte_ssc: float = pop.IMMATURE_GRANULOCYTE_SSC,
                      eosinophil_fraction: float = 0.0, lyse_no_wash: float = 0.0,
                      drift: Drift | None = None, interruption: Interruption | None = None,
                      with_cd14: bool = True, carryover_beads: float = 0.0,
                      carryover_lot: Sequence[float] = (474.0, 5359.0, 23843.0, 62336.0),
                      collected_at: datetime | None = None,
                      pe_voltage: float | None = None, patient_id: str = "PT-0001",
                      collection_date: date = date(2026, 3, 12), icu_admission: date = date(2026, 3, 5),
                      acquired: datetime | None = None, lymphocyte_fraction: float = 0.22,
                      doublet_fraction: float = 0.03, debris_fraction: float = 0.06,
                      marker_labels: bool | None = None, filename: str | None = None) -> Tube:
    """A lysed whole-blood tube stained with anti-HLA-DR PE (L243) and anti-CD14 PerCP-Cy5.5.

    Monocyte HLA-DR is lognormal with median ``abc`` (ln-sd ``hladr_sigma``), their CD14 median
    ``monocyte_cd14`` molecules (lower it for monocytes that shed CD14); ``bimodal`` =
    (fraction, median) draws that fraction of monocytes from a second mode;
    ``cd14_dim_fraction`` of monocytes are CD14 dim, with ``cd14_dim_hladr`` times the HLA-DR of
    the others. What septic blood adds (fractions of all events): ``immature_granulocyte_fraction``
    (a left shift, CD14 ``immature_granulocyte_cd14`` molecules, SSC ``immature_granulocyte_ssc``
    of full scale), ``eosinophil_fraction``, and
    ``lyse_no_wash`` (red-cell ghosts and platelets a wash would remove). ``drift`` and
    ``interruption`` are acquisition faults along Time (:mod:`data_samples.faults`).
    ``with_cd14=False`` acquires no PerCP-Cy5.5 parameter (the wrong panel).
    ``carryover_beads``: that fraction of all events are QuantiBRITE beads of ``carryover_lot``
    left in the fluidics from the bead tube. ``collected_at``: the draw's date and time, written
    as ``COLLECTION DATE`` + ``COLLECTION TIME`` (its date replaces ``collection_date``).
    """
    if collected_at is not None:
        collection_date = collected_at.date()
    voltage = float(pe_voltage if pe_voltage is not None else instrument.pe_voltage)
    acquired = acquired or datetime.combine(collection_date, datetime.min.time()) + timedelta(hours=10)
    rng = np.random.default_rng(seed)
    fractions = [monocyte_fraction, lymphocyte_fraction, 0.0, immature_granulocyte_fraction, eosinophil_fraction,
                 lyse_no_wash, doublet_fraction, debris_fraction]
    fractions[2] = 1.0 - sum(fractions)
    if fractions[2] <= 0 or min(fractions) < 0:
        raise ValueError("population fractions must be >= 0 and leave room for granulocytes")
    n_mono, n_lymph, n_gran, n_imm, n_eos, n_ghost, n_doub, n_deb = _counts(rng, events, fractions)
    cells = pop.concat([pop.monocytes(rng, n_mono, abc, hladr_sigma, cd14_dim_fraction, bimodal, cd14_dim_hladr,
                                      monocyte_cd14),
                        pop.lymphocytes(rng, n_lymph), pop.granulocytes(rng, n_gran),
                        pop.immature_granulocytes(rng, n_imm, immature_granulocyte_cd14, immature_granulocyte_ssc),
                        pop.eosinophils(rng, n_eos)])
    pieces = [cells, pop.debris(rng, n_deb), pop.red_cell_ghosts(rng, n_ghost)]
    if n_doub:
        pieces.append(pop.doublets(rng, cells, n_doub))
    if carryover_beads > 0:
        per_level = int(round(events * carryover_beads / len(carryover_lot)))
        pieces += [pop.beads(rng, per_level, v, 0.03, "carryover_bead") for v in carryover_lot]
    icu_day = (collection_date - icu_admission).days
    name = filename or f"{patient_id}_D{icu_day:02d}_HLADR.fcs"
    keywords = {"TUBE NAME": "HLA-DR/CD14" if with_cd14 else "HLA-DR",
                "EXPERIMENT NAME": f"mHLA-DR {acquired.date().isoformat()}",
                "PATIENT ID": patient_id, "SAMPLE ID": f"{patient_id}_D{icu_day:02d}",
                "COLLECTION DATE": collection_date.isoformat(), "ICU ADMISSION DATE": icu_admission.isoformat()}
    if collected_at is not None:
        keywords["COLLECTION TIME"] = collected_at.strftime("%H:%M:%S")
    tube = _build(instrument, "sample", pop.concat(pieces), voltage, rng, with_cd14, marker_labels,
                  keywords, acquired, name, drift, interruption)
    labels = tube.particles.label
    mono = np.isin(labels, pop.MONOCYTE_LABELS)
    bright = labels == "monocyte"
    slope, intercept = instrument.curve(voltage)
    names, counts = np.unique(labels, return_counts=True)
    true_abc = float(np.median(tube.particles.pe_molecules[mono])) if mono.any() else None
    mono_pe = float(np.median(tube.compensated()[mono, tube.index("pe")])) if mono.any() else None
    truth = {"file": name, "kind": "sample", "patient_id": patient_id,
             "collection_date": collection_date.isoformat(), "icu_admission": icu_admission.isoformat(),
             "icu_day": icu_day, "in_window": WINDOW[0] <= icu_day <= WINDOW[1],
             "acquired": acquired.isoformat(), **_instrument_truth(instrument, voltage),
             "abc": None if true_abc is None else _sig(true_abc), "abc_definition": ABC_DEFINITION,
             "requested_abc": float(abc),
             "abc_cd14_bright": _sig(float(np.median(tube.particles.pe_molecules[bright]))) if bright.any() else None,
             "below_threshold": None if true_abc is None else true_abc < THRESHOLD,
             "category": None if true_abc is None else category(true_abc),
             "n_monocytes": int(mono.sum()), "n_monocytes_cd14dim": int((labels == "monocyte_cd14dim").sum()),
             "monocyte_pe_median": None if mono_pe is None else _sig(mono_pe),
             "abc_from_true_curve": None if mono_pe is None else _sig(10.0 ** (slope * np.log10(mono_pe) + intercept)),
             "bimodal": list(bimodal) if bimodal is not None else None,
             "monocyte_cd14": monocyte_cd14,
             "cd14_dim_fraction": cd14_dim_fraction, "cd14_dim_hladr": cd14_dim_hladr,
             "immature_granulocyte_fraction": immature_granulocyte_fraction,
             "immature_granulocyte_cd14": immature_granulocyte_cd14,
             "immature_granulocyte_ssc": immature_granulocyte_ssc,
             "eosinophil_fraction": eosinophil_fraction, "lyse_no_wash": lyse_no_wash,
             "faults": [f.as_dict() for f in (drift, interruption) if f is not None],
             "time_channel": "time" in tube.roles, "carryover_beads": carryover_beads,
             "collected_at": None if collected_at is None else collected_at.isoformat(),
             "draw_to_acquisition_hours": None if collected_at is None
             else round((acquired - collected_at).total_seconds() / 3600.0, 2),
             "with_cd14": with_cd14, "events": int(len(tube.events)),
             "populations": {str(k): int(v) for k, v in zip(names, counts)}}
    tube.truth.update(truth)
    return tube


def fcs_bytes(tube: Tube, file_name: str | None = None) -> bytes:
    """The FCS file content of a tube (FCS 3.1 float or FCS 2.0 16-bit, by instrument);
    ``$FIL`` names ``file_name`` (default: the tube's own file name)."""
    keywords = dict(tube.keywords) | {"$FIL": file_name or tube.filename}
    if tube.instrument.is_log:
        return fcs20_int16_bytes(tube.parameters, encode_channels(tube.parameters, tube.events), keywords)
    if tube.spillover is not None and tube.write_spillover:
        keywords = {"$SPILLOVER": spillover_value(*tube.spillover)} | keywords
    return fcs31_float_bytes(tube.parameters, tube.events, keywords, big_endian=tube.instrument.big_endian)


def write_tube(tube: Tube, path: str | Path) -> Path:
    """Write ``tube`` to ``path`` (a folder: the tube's own file name inside it)."""
    out = Path(path)
    if out.is_dir():
        out = out / tube.filename
    return write_bytes(out, fcs_bytes(tube, out.name))
