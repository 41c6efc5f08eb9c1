"""`python -m mtlv.report [tracking_uri=...] [out=...] [experiments=[openi]] [filter=...] [select_on=val|test]
[reference=my_reference.csv] [reference_model=bert|null] [plots=false]`: render the tables of the reference
study from an MLflow store, beside its published numbers, and print each section's table 1.

Options use Hydra's override syntax (conf/report.yaml), but no Hydra job starts, so nothing but the
report folder is written."""
from __future__ import annotations

import logging
import sys

from mtlv.errors import ConfigError, entry_point


@entry_point
def main(argv: list[str] | None = None) -> int:
    from hydra.errors import HydraException

    from mtlv.config import compose
    from mtlv.report.page import build_report

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        cfg = compose(args, config_name="report")
    except HydraException as err:  # a bad override: Hydra's own message, as one `error:` line
        raise ConfigError(str(err).strip().replace("\n", " ")) from err
    page = build_report(cfg)
    for main_table in sorted(page.parent.glob("*/table1_main.md")):  # the headline table of every section
        print(main_table.read_text(), flush=True)
    print(f"report: {page}\ntables, CSV and LaTeX: {page.parent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
