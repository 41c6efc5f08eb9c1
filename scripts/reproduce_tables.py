"""`make reproduce-tables SCALE=...`: an alias of `python -m mtlv.study study=thesis` (conf/study/thesis*.yaml).

    python scripts/reproduce_tables.py --scale smoke|smoke-ci|minilm|openi-cpu|paper [--seeds 42,43] [--datasets openi]
        [--grid reference|beyond] [--families mtl,gmhl,gmtl,stl,baseline] [--no-report] [--dry-run] [--report-only]
        [--overrides key=value ...]

Each option is the study option of the same meaning: --scale picks study=thesis (paper) or thesis_<scale>,
--seeds study.seeds, --datasets study.only_datasets, --families study.archs, --grid beyond study.run_grids=null,
--no-report study.report=false, --dry-run study.dry_run=true; --overrides go to the study as they are (any
option of `python -m mtlv.train`). --report-only renders the tables from the store (`python -m mtlv.report`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = ("paper", "minilm", "openi-cpu", "smoke", "smoke-ci")
FAMILIES = ("baseline", "mtl", "gmhl", "gmtl", "stl")


def study_args(args: argparse.Namespace) -> list[str]:
    out = ["study=thesis" if args.scale == "paper" else f"study=thesis_{args.scale.replace('-', '_')}"]
    if args.seeds:
        out.append(f"study.seeds=[{args.seeds}]")
    if args.datasets:
        out.append(f"study.only_datasets=[{args.datasets}]")
    if args.families:
        out.append(f"study.archs=[{args.families}]")
    if args.grid == "beyond":
        out.append("study.run_grids=null")
    if args.no_report:
        out.append("study.report=false")
    if args.dry_run:
        out.append("study.dry_run=true")
    return out + list(args.overrides)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="smoke")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (repeats of the cross-validation)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset of the scale's datasets")
    parser.add_argument("--families", default=None, help=f"comma-separated subset of {','.join(FAMILIES)}")
    parser.add_argument("--grid", choices=["reference", "beyond"], default="reference",
                        help="beyond: also the groupings and GMHL loss weightings beyond the thesis (docs/grouping.md)")
    parser.add_argument("--overrides", nargs="*", default=[], help="options for the whole study, as for mtlv.train")
    parser.add_argument("--no-report", action="store_true", help="train only")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--report-only", action="store_true", help="render the tables from the store only")
    args = parser.parse_args(argv)
    if args.families and (unknown := sorted(set(args.families.split(",")) - set(FAMILIES))):
        parser.error(f"--families: unknown {','.join(unknown)}; choose from {','.join(FAMILIES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    args = parse(argv)
    if args.report_only:
        from mtlv.report.__main__ import main as report

        return report([])
    from mtlv.study.__main__ import main as study

    return study(study_args(args))


if __name__ == "__main__":
    sys.exit(main())
