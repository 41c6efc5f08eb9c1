"""Aggregate a one-model-per-group cell (STL, GMTL) into one result comparable with MTL/GMHL
(the sweeper does this itself when a sweep's jobs return; see mtlv/run/aggregation.py).

`python -m mtlv.aggregate <cell folder | sweep folder | parent run id> [--tracking-uri URI]`
"""
from __future__ import annotations

import argparse
import logging
import sys

from mtlv.errors import entry_point


@entry_point
def main(argv: list[str] | None = None) -> int:
    from mtlv.run.aggregation import aggregate_cell, find_cells

    parser = argparse.ArgumentParser(prog="python -m mtlv.aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="cell folder, Hydra sweep folder, or parent MLflow run id")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store of the run id (default: MTLV's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for cell in find_cells(args.target, args.tracking_uri):
        aggregate_cell(cell)
    return 0


if __name__ == "__main__":
    sys.exit(main())
