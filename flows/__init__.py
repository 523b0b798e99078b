"""Prefect flows over the pipeline: composition only (no science here).

Telemetry is off for every process that imports the flows: the lab's machines are often
offline, where Prefect's analytics calls only log errors.
"""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
