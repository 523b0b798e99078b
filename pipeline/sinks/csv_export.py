"""CSV export for the trial's eCRF: one row per version of a result, appended once per
idempotency key; :meth:`CsvSink.rewrite` writes the whole file again (``export --rebuild``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable

from pipeline.sinks import Sink, SinkError

COLUMNS = ("result_id", "version", "status", "patient_id", "collection_date", "icu_day", "in_window", "abc",
           "abc_low", "abc_high", "below_threshold", "category", "p_below_threshold", "near_cutoff",
           "hla_dr_positive_percent", "qc_status", "review", "decisive",
           "screening_status", "file_sha256", "idempotency_key")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _row(key: str, payload: dict[str, Any]) -> dict[str, str]:
    interval = payload.get("abc_interval") or [None, None]
    p = payload.get("p_below_threshold")
    row = {**payload, "abc_low": interval[0], "abc_high": interval[1],
           "p_below_threshold": None if p is None else f"{p:.4f}",
           "qc_status": payload["qc"]["status"], "idempotency_key": key}
    return {c: _cell(row.get(c)) for c in COLUMNS}


class CsvSink(Sink):
    name = "csv"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._written: set[str] | None = None      # keys in the file, read at the first delivery

    def _keys(self) -> set[str]:
        if self._written is None:
            self._written = set()
            if self.path.is_file():
                with self.path.open(newline="", encoding="utf-8") as fh:
                    reader = csv.DictReader(fh)
                    if reader.fieldnames is not None and tuple(reader.fieldnames) != COLUMNS:
                        raise SinkError(f"csv {self.path}: its columns are not this version's; rewrite it with "
                                        "`mhladr export --sink csv --rebuild`")
                    self._written = {row["idempotency_key"] for row in reader}
        return self._written

    def deliver(self, key: str, payload: dict[str, Any]) -> None:
        """Append the row unless a row with this key is already there."""
        try:
            keys = self._keys()
            if key in keys:
                return
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            if not self.path.is_file() or self.path.stat().st_size == 0:
                writer.writeheader()
            writer.writerow(_row(key, payload))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", newline="", encoding="utf-8") as fh:
                fh.write(buffer.getvalue())
            keys.add(key)
        except (OSError, KeyError) as exc:
            raise SinkError(f"csv {self.path}: {exc}") from exc

    def rewrite(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Replace the file with these (key, payload) rows, atomically (write, then rename)."""
        try:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            keys = set()
            for key, payload in items:
                writer.writerow(_row(key, payload))
                keys.add(key)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
            tmp.replace(self.path)
            self._written = keys
        except (OSError, KeyError) as exc:
            raise SinkError(f"csv {self.path}: {exc}") from exc
