"""Record results trained without MLflow (`logger=none`) into the MLflow store, exactly as the trained
jobs would have logged them (see mtlv/run/importer.py); what is already in the store is left alone.

`python -m mtlv.track <runs folder | cell folder> [--tracking-uri URI] [--experiment NAME]`
"""
from __future__ import annotations

import argparse
import logging
import sys

from mtlv.errors import entry_point


@entry_point
def main(argv: list[str] | None = None) -> int:
    from mtlv.run.importer import track

    parser = argparse.ArgumentParser(prog="python -m mtlv.track", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a runs folder (e.g. outputs/runs or outputs/runs/openi) or one cell folder")
    parser.add_argument("--tracking-uri", default=None, help="the MLflow store (default: paths.mlflow_uri)")
    parser.add_argument("--experiment", default=None,
                        help="the MLflow experiment (default: the one each job was logged to when trained: "
                             "its dataset's name, or for a CSV the file's name and data fingerprint)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    track(args.folder, args.tracking_uri, args.experiment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
