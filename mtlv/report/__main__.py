"""`python -m mtlv.report [tracking_uri=...] [out=...] [experiments=[openi]] [filter=...] [select_on=val|test]
[reference=my_reference.csv] [reference_model=bert|null] [plots=false] [margin=0.01] [html=false]`: the
report of every study in an MLflow store, for any dataset: per section a recommendation (the setting chosen on
validation, the cheapest one tied with it, what they cost), the tables and figures (beside the reference
study's published numbers where it has them), report.md and report.html. Prints each section's table 1 and
the recommendations.

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
    print((page.parent / "recommendation.md").read_text(), flush=True)
    print(f"report: {page}" + (" (and report.html, self-contained)" if cfg.get("html", True) else "")
          + f"\ntables, CSV and LaTeX: {page.parent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
