"""What keeps `mhladr run`'s fixed cost down (see docs/scale_out.md): the workers' preload
stays free of scikit-learn, scipy's statistics and pandas, and the batch flow records plain
parameters without loading FastAPI's encoder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prefect import Flow

from flows.batch import PlainParameterFlow, batch_flow
from pipeline.workers import PRELOAD

REPO = Path(__file__).resolve().parents[1]


def test_worker_preload_loads_no_heavy_library() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in PRELOAD)
            + "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pandas', 'matplotlib', "
              "'sqlalchemy', 'prefect', 'flowkit'}), 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "False"]


def test_plain_parameters_are_recorded_as_prefect_would() -> None:
    params = {"inbox": "/lab/inbox", "registry": None, "lots": "/lab/lots.csv", "files": ["a.fcs", "b.fcs"]}
    assert isinstance(batch_flow, PlainParameterFlow)
    assert batch_flow.serialize_parameters(params) == Flow.serialize_parameters(batch_flow, params)


def test_other_parameters_go_through_prefect_encoding() -> None:
    params = {"inbox": Path("/lab/inbox"), "registry": None, "lots": None, "files": None}
    assert batch_flow.serialize_parameters(params) == {"inbox": "/lab/inbox", "registry": None, "lots": None,
                                                       "files": None}
