"""Imported first by the worker pool's forkserver, before numpy: one BLAS/OpenMP thread per worker.

The pool already runs one worker per core; each worker's OpenBLAS (numpy, scipy) and OpenMP
(scikit-learn) would otherwise start a thread per core too, and on a two-core machine the
oversubscribed threads made a patient tube three times slower (~100 ms instead of ~33 ms,
measured with ``benchmarks/bench_flows.py``). The libraries read these variables once, when
they load, so this module must be imported before them (:data:`pipeline.workers.PRELOAD`).
The calling process is untouched: only the forkserver imports this module.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"
