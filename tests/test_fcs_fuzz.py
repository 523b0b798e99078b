"""Property test of the reader: damaged files end in a typed error, never a crash, hang or big allocation."""

from __future__ import annotations

import functools
import re
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.fcs import read_fcs
from tests.conftest import real_fcs_dir

SEEDS = ["FlowKit/gate_ref/data1.fcs",                 # FCS 2.0, 16-bit ints, log amps
         "FlowIO/G11.fcs",                             # FCS 3.1 floats, $SPILLOVER
         "cytoflow/instruments/Cytek xP5.fcs",         # 24-bit ints
         "cytoflow/instruments/Beckman Coulter - Gallios.LMD"]  # two data sets
KEYWORDS = ["$TOT", "$PAR", "$P1B", "$P2R", "$BEGINDATA", "$ENDDATA", "$NEXTDATA", "$DATATYPE",
            "$BYTEORD", "$MODE", "$P1E", "$SPILLOVER", "SPILL"]
PEAK_LIMIT = 64 * 2**20   # bytes of Python/numpy allocation a damaged small file may cost


def _read_bounded(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.fcs"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            read_fcs(path)
        except InputError as err:
            assert err.code and err.message and "damaged.fcs" in err.file
            assert "\n" not in err.message
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert peak < PEAK_LIMIT, f"{peak} bytes allocated"


def _edit_keyword(data: bytes, key: str, value: bytes) -> bytes:
    delim = data[int(data[10:18]) : int(data[10:18]) + 1] if data[10:18].strip().isdigit() else b"/"
    pattern = re.escape(delim + key.encode()) + re.escape(delim) + rb"[^" + re.escape(delim) + rb"]*"
    replacement = delim + key.encode() + delim + value.replace(delim, b"")
    return re.sub(pattern, lambda _: replacement, data, count=1)


@functools.lru_cache(maxsize=None)
def _seed(which: int) -> bytes:
    return (real_fcs_dir() / SEEDS[which]).read_bytes()


@pytest.fixture(scope="module")
def seed_bytes(real_fcs: Path) -> list[bytes]:
    """Skips the module without the corpus; hypothesis tests read through ``_seed``."""
    return [_seed(i) for i in range(len(SEEDS))]


common = settings(max_examples=60, deadline=2000, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@common
@given(which=st.integers(0, len(SEEDS) - 1), cut=st.floats(0, 1, exclude_max=True))
def test_truncations(real_fcs: Path, which: int, cut: float) -> None:
    data = _seed(which)
    _read_bounded(data[: int(len(data) * cut)])


@common
@given(which=st.integers(0, len(SEEDS) - 1),
       flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=8))
def test_byte_flips_in_header_and_text(real_fcs: Path, which: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_seed(which))
    for pos, value in flips:
        data[pos % len(data)] = value
    _read_bounded(bytes(data))


@common
@given(which=st.integers(0, len(SEEDS) - 1), key=st.sampled_from(KEYWORDS),
       value=st.one_of(st.integers(-10, 10**15).map(lambda v: str(v).encode()),
                       st.binary(min_size=0, max_size=12), st.sampled_from([b"", b"F", b"I", b"A", b"D", b"4,3,2,1",
                                                                            b"2,1,4,3", b"U", b"C", b"0,0", b"9,0"])))
def test_keyword_edits(real_fcs: Path, which: int, key: str, value: bytes) -> None:
    _read_bounded(_edit_keyword(_seed(which), key, value))


def test_absurd_event_count_is_refused_before_allocating(seed_bytes: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "absurd.fcs"
    path.write_bytes(_edit_keyword(seed_bytes[0], "$TOT", b"999999999999"))
    tracemalloc.start()
    with pytest.raises(InputError) as err:
        read_fcs(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.value.code == "truncated" and "absurd.fcs" in str(err.value)
    assert peak < 8 * 2**20


def test_missing_datatype_is_inferred_for_16_bit_integers(seed_bytes: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "nodatatype.fcs"
    data = seed_bytes[0]
    assert b"$DATATYPE" in data
    path.write_bytes(data.replace(b"$DATATYPE", b"$XATATYPE", 1))   # same length: offsets stay right
    acq = read_fcs(path)
    assert acq.n_events == 13367
    assert any("$DATATYPE missing" in n for n in acq.notes)


def test_zero_events_is_no_events(seed_bytes: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "empty.fcs"
    path.write_bytes(_edit_keyword(seed_bytes[0], "$TOT", b"0"))
    with pytest.raises(InputError) as err:
        read_fcs(path)
    assert err.value.code == "no_events"


@pytest.mark.parametrize(("value", "events"), [(b"002e4", None), (b"1.3367e4", 13367), (b"13367.0", 13367)])
def test_non_integer_counts_are_read_once_leniently(seed_bytes: list[bytes], tmp_path: Path,
                                                    value: bytes, events: int | None) -> None:
    """$TOT is parsed once (fcs_segments.declared_widths); a float-spelled count either reads
    (when it is the true count) or ends as a typed InputError, never a bare ValueError."""
    path = tmp_path / "float_tot.fcs"
    path.write_bytes(_edit_keyword(seed_bytes[0], "$TOT", value))
    if events is None:
        with pytest.raises(InputError) as err:
            read_fcs(path)
        assert err.value.code == "truncated" and "float_tot.fcs" in err.value.file
    else:
        assert read_fcs(path).n_events == events


@pytest.mark.parametrize("key", ["$PAR", "$P1B"])
def test_float_spelled_widths_are_read_once(seed_bytes: list[bytes], tmp_path: Path, key: str) -> None:
    """$PAR and $PnB spelled as floats read like their integer values (one lenient parse)."""
    text = seed_bytes[0]
    delim = text[int(text[10:18]):int(text[10:18]) + 1]
    value = re.search(re.escape(delim + key.encode() + delim) + rb"(\d+)", text)
    assert value is not None
    path = tmp_path / "float_width.fcs"
    path.write_bytes(_edit_keyword(text, key, value.group(1) + b".0"))
    assert read_fcs(path).n_events == 13367
