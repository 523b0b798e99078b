"""Shared pytest fixtures (nothing is loaded at import time)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_fcs_dir() -> Path:
    """The real FCS corpus: ``MHLADR_REAL_FCS`` or ``<repo>/../shared/real_fcs``."""
    return Path(os.environ.get("MHLADR_REAL_FCS", REPO.parent / "shared" / "real_fcs"))


@pytest.fixture(scope="session")
def real_fcs() -> Path:
    folder = real_fcs_dir()
    if not (folder / "MANIFEST.md").is_file():
        pytest.skip(f"real FCS corpus not found at {folder} (set MHLADR_REAL_FCS)")
    return folder


@pytest.fixture(scope="session")
def data_samples() -> Path:
    return REPO / "data_samples"


from tests.prefect_harness import prefect_home, prefect_server  # noqa: E402,F401  (one Prefect server per test session)
from tests.console_fixtures import console, console_template  # noqa: E402,F401  (one lab console per test session)
