"""Which files of an inbox folder are FCS files to process (shared by the batch flow and the watcher)."""

from __future__ import annotations

from pathlib import Path

FCS_SUFFIXES = (".fcs", ".lmd")


def inbox_files(inbox: Path) -> list[Path]:
    """The FCS files directly in ``inbox`` (not in sub-folders, not hidden), in name order."""
    return sorted((p for p in Path(inbox).iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in FCS_SUFFIXES), key=lambda p: p.name)
