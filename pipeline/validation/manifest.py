"""The release manifest: Python's version, every runtime dependency's version and the SHA-256 of
every file of the installed packages, written at release (``make release-manifest``, i.e.
``python -m pipeline.validation.manifest``) and compared by ``mhladr validate``'s IQ."""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

PACKAGES = ("app", "flows", "pipeline", "calibration", "gating", "science", "fcsio")
ROOT = Path(__file__).resolve().parents[2]           # where the packages are installed
MANIFEST = Path(__file__).resolve().parent / "release_manifest.json"
DISTRIBUTION = "mhladr"


def installed_files(root: Path = ROOT) -> dict[str, str]:
    """Relative path -> SHA-256 of every file of :data:`PACKAGES` under ``root`` (no caches, not
    the manifest itself)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and "__pycache__" not in path.parts and path != MANIFEST \
                    and rel != MANIFEST.relative_to(ROOT).as_posix() and not rel.endswith((".pyc", ".tmp")):
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def runtime_dependencies(distribution: str = DISTRIBUTION) -> dict[str, str]:
    """Name -> installed version of every runtime (non-extra) requirement of ``distribution``."""
    names = []
    for requirement in metadata.requires(distribution) or []:
        if "extra ==" in requirement:
            continue
        found = re.match(r"[A-Za-z0-9._-]+", requirement)
        if found:
            names.append(found.group(0))
    return {name.lower(): metadata.version(name) for name in sorted(set(names), key=str.lower)}


def current(root: Path = ROOT) -> dict[str, Any]:
    """The manifest of what is installed now."""
    return {"version": metadata.version(DISTRIBUTION), "python": ".".join(platform.python_version_tuple()[:2]),
            "dependencies": runtime_dependencies(), "files": installed_files(root)}


def load(path: Path = MANIFEST) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the release manifest (at release only)")
    parser.add_argument("--out", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
