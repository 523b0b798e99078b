"""Metamorphic fuzz test of ``mhladr analyze``: one keyword of a valid tube edited at a time.

Every edit must end in a typed error (exit 2 with a reason code), a QC ``fail``, or an AB/C
within 3 % of the unedited tube's: never a traceback, never a confident wrong number. The
edited file is rebuilt with consistent offsets (unless an offset keyword is the edit), so the
reader gets past the structure and the edit reaches what the keyword means (a scale keyword
edited on one tube only is a QC ``fail`` from ``calibration.scale.scale_findings``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import tempfile
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_samples.generate import CALIBUR, CANTO, LYRIC, make_bead_tube, make_patient_tube, write_tube
from app.cli import main
from fcsio.segments import parse_text_segment

LOT = "474,5359,23843,62336"
FLAVOURS = (CANTO, CALIBUR, LYRIC)
_OFFSETS = ("$BEGINDATA", "$ENDDATA")


@functools.lru_cache(maxsize=None)
def _pair(which: int) -> tuple[bytes, bytes, float]:
    """(sample bytes, bead bytes, unedited AB/C) of one flavour, made once."""
    ins = FLAVOURS[which]
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    beads = write_tube(make_bead_tube(ins, (474.0, 5359.0, 23843.0, 62336.0), events=10_000, seed=31,
                                      acquired=datetime(2026, 3, 12, 8, 0)), folder)
    sample = write_tube(make_patient_tube(ins, abc=6500.0, events=20_000, seed=32, patient_id="PT-0920",
                                          monocyte_fraction=0.14,
                                          acquired=datetime(2026, 3, 12, 10, 0)), folder)
    code, doc = _analyze(sample, beads)
    assert code == 0 and doc["qc"]["status"] == "pass", doc
    return sample.read_bytes(), beads.read_bytes(), doc["abc"]


def _analyze(sample: Path, beads: Path) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["analyze", str(sample), "--beads", str(beads), "--lot-values", LOT, "--json"])
    assert "Traceback" not in err.getvalue()
    return code, json.loads(out.getvalue())


def _keywords(raw: bytes) -> list[str]:
    return sorted(parse_text_segment(raw[int(raw[10:18]):int(raw[18:26]) + 1]))


def _rebuild(raw: bytes, key: str, value: str) -> bytes:
    """The file with TEXT keyword ``key`` set to ``value`` and the offsets made consistent."""
    version = raw[:6].decode("ascii")
    t0, t1, d0, d1 = (int(raw[i:i + 8]) for i in (10, 18, 26, 34))
    text = parse_text_segment(raw[t0:t1 + 1])
    data = raw[d0:d1 + 1]
    text[key] = value
    for _ in range(4):
        body = ("/" + "".join(f"{k.replace('/', '//')}/{v.replace('/', '//')}/" for k, v in text.items())
                ).encode("utf-8")
        begin, end = t0 + len(body), t0 + len(body) + len(data) - 1
        if version != "FCS2.0" and key not in _OFFSETS:
            text["$BEGINDATA"], text["$ENDDATA"] = str(begin), str(end)
    header = (version + "    " + "".join(str(o).rjust(8) for o in (t0, t0 + len(body) - 1, begin, end, 0, 0)))
    return header.encode("ascii").ljust(t0, b" ") + body + data


def _value(original: str, choice: int, number: float, text: str) -> str:
    try:
        numeric = float(original.split(",")[0])
    except ValueError:
        numeric = None
    options = ["0", "1", "-1", "2", "4,0", "0,0", "5,0", "1024", "4096", "262144", "F", "I", "D",
               "4,3,2,1", "1,2,3,4", "nan", "1e30", text or "x"]
    if numeric is not None:
        options += [f"{numeric * number:g}", f"{numeric + 1:g}", original + ",1"]
    return options[choice % len(options)]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(FLAVOURS) - 1), edit_beads=st.booleans(), key_index=st.integers(0, 10_000),
       choice=st.integers(0, 100), number=st.sampled_from([0.5, 0.9, 1.01, 2.0, 1e3]),
       text=st.text(alphabet="abcXYZ019,.-", max_size=8))
def test_single_keyword_edits_end_typed_failed_or_right(which: int, edit_beads: bool, key_index: int,
                                                        choice: int, number: float, text: str) -> None:
    sample_raw, beads_raw, baseline = _pair(which)
    target = beads_raw if edit_beads else sample_raw
    keys = _keywords(target)
    key = keys[key_index % len(keys)]
    original = parse_text_segment(target[int(target[10:18]):int(target[18:26]) + 1])[key]
    value = _value(original, choice, number, text)
    edited = _rebuild(target, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        sample, beads = Path(tmp) / "PT-0920_D07_HLADR.fcs", Path(tmp) / "BEADS_2026-03-12_lotA.fcs"
        sample.write_bytes(sample_raw if edit_beads else edited)
        beads.write_bytes(edited if edit_beads else beads_raw)
        code, doc = _analyze(sample, beads)
        where = f"{'beads' if edit_beads else 'sample'} {FLAVOURS[which].key} {key}: {original!r} -> {value!r}"
        if code == 2:
            assert doc["error"]["code"] and doc["error"]["message"], where
            return
        assert code == 0, where
        if doc["qc"]["status"] == "fail":
            return
        assert doc["abc"] is not None and abs(doc["abc"] / baseline - 1.0) <= 0.03, (where, doc["abc"], baseline,
                                                                                      doc["qc"])
