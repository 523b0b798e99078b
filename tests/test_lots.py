"""Bead lot tables and --lot-values."""

from __future__ import annotations

import pytest

from pipeline.errors import BAD_LOT, InputError
from pipeline.lots import find_lot, parse_lot_values, read_lots, resolve_lot

HEADER = "lot,low,med_low,med_high,high\n"


def write(tmp_path, text):
    path = tmp_path / "lots.csv"
    path.write_text(text)
    return path


def test_read_lots_and_resolve_by_name(tmp_path):
    path = write(tmp_path, HEADER + "lotA,474,5359,23843,62336\nB2,638,6930,31008,67601\n")
    lots = read_lots(path)
    assert lots["lotA"].values == pytest.approx((474, 5359, 23843, 62336))
    assert find_lot("b2", lots, path).values[-1] == pytest.approx(67601)
    assert resolve_lot("BEADS_2026-03-12_lotA.fcs", "A", path).name == "lotA"


@pytest.mark.parametrize("row, words", [
    ("lotA,474,5359,23843\n", "expected 4 bead values"),
    ("lotA,474,5359,23843,62336,70000\n", "expected 4 bead values"),
    ("lotA,474,abc,23843,62336\n", "must be numbers"),
    ("lotA,474,5359,3000,62336\n", "must increase"),
    ("lotA,-1,5359,23843,62336\n", ">= 0"),
])
def test_bad_lot_rows(tmp_path, row, words):
    path = write(tmp_path, HEADER + row)
    with pytest.raises(InputError) as err:
        read_lots(path)
    assert err.value.code == BAD_LOT and words in err.value.message and err.value.file == str(path)


def test_bad_header_and_unknown_lot(tmp_path):
    with pytest.raises(InputError, match="header"):
        read_lots(write(tmp_path, "name,a,b\nx,1,2\n"))
    path = write(tmp_path, HEADER + "lotA,474,5359,23843,62336\n")
    with pytest.raises(InputError) as err:
        resolve_lot("beads.fcs", "lotZ", path)
    assert err.value.code == BAD_LOT and "lotZ" in err.value.message and err.value.file == "beads.fcs"
    with pytest.raises(InputError, match="names no lot"):
        resolve_lot("beads.fcs", None, path)
    with pytest.raises(InputError, match="cannot read"):
        read_lots(tmp_path / "absent.csv")


def test_lot_values_any_number_of_levels():
    assert parse_lot_values("0, 792,2079,6588,16471,47497,137049,271647", "b.fcs").values[0] == 0.0
    assert len(parse_lot_values("474,5359,23843,62336", "b.fcs").values) == 4
    for bad in ("474,x,23843", "", "474,474,500", "0,0,5"):
        with pytest.raises(InputError) as err:
            parse_lot_values(bad, "b.fcs")
        assert err.value.code == BAD_LOT


def test_one_rule_finds_the_lot_table(tmp_path, monkeypatch):
    """lots.csv beside the FCS files (for the watcher's processed/ and quarantine/, the inbox
    above), else ./lots.csv, else none."""
    from pipeline.lots import choose_lot, default_table
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "cwd"
    (inbox / "quarantine").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert default_table(inbox) is None
    with pytest.raises(InputError, match="no lot table: put lots.csv"):
        choose_lot(inbox / "BEADS_x_lotA.fcs", "lotA")
    write(elsewhere, HEADER + "lotA,1,2,3,4\n")
    assert default_table(inbox) == elsewhere / "lots.csv"
    write(inbox, HEADER + "lotA,474,5359,23843,62336\n")
    assert default_table(inbox) == default_table(inbox / "quarantine") == inbox / "lots.csv"
    assert choose_lot(inbox / "quarantine" / "BEADS_x_lotA.fcs", "lotA").values[0] == pytest.approx(474)
