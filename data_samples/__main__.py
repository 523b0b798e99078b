"""``python -m data_samples [--out DIR] [--seed N]``: rewrite the committed sample set."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from data_samples.sample_set import DEFAULT_SEED, write_sample_set


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the committed sample set (FCS files, truth.json, lots.csv, registry.csv, README.md)."""
    parser = argparse.ArgumentParser(prog="python -m data_samples", description=main.__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    write_sample_set(args.out, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
