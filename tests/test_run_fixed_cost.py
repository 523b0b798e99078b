"""What keeps `mhladr run`'s fixed cost down (see docs/scale_out.md): the workers' preload
stays free of scikit-learn, scipy's statistics and pandas, which only the one bead worker loads
(and gives back after the bead tubes); the batch flow records plain parameters without loading
FastAPI's encoder and hands back its document without Prefect walking it."""

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


def loaded(name: str) -> tuple[int, bool]:
    """(pid, whether module ``name`` is loaded) of the process this runs in (a worker)."""
    import os
    return os.getpid(), name in sys.modules


def test_only_the_bead_worker_loads_scikit_learn_and_it_ends_after_its_bead_tubes() -> None:
    from pipeline.workers import ProcessPool

    pool = ProcessPool(processes=1)
    try:
        pool.warm_up(beads=True)
        [(_, future)] = list(pool.run(loaded, ["sklearn.mixture"], beads=True))
        bead_pid, bead_has = future.result(timeout=120)
        [(_, future)] = list(pool.run(loaded, ["sklearn"]))
        tube_pid, tube_has = future.result(timeout=120)
        assert bead_has and not tube_has and bead_pid != tube_pid
        pool.release_beads()
        [(_, future)] = list(pool.run(loaded, ["sklearn.mixture"], beads=True))
        again_pid, again_has = future.result(timeout=120)
        assert again_has and again_pid != bead_pid          # a new bead worker after the release
    finally:
        pool.close()


def test_the_flow_hands_its_caller_the_document_not_the_quote(prefect_server) -> None:
    from prefect.utilities.annotations import quote

    from flows.batch import plain_flow
    from flows.server import connected

    @plain_flow(name="quoted-document")
    def document() -> quote[dict]:
        return quote({"files": [{"file": "a.fcs"}]})

    with connected(prefect_server.url):
        assert document() == {"files": [{"file": "a.fcs"}]}
