"""`python -m mtlv.study study=<name> [dataset=csv dataset.path=my.csv] [model=...] [trainer.max_epochs=...]
[hydra/launcher=parallel hydra.launcher.n_jobs=2] [study.dry_run=true]`

Runs a whole study (conf/study/: quick, groupings, thesis, ...): prints its plan (trainings, distinct models
after reuse, estimated time), runs its sweeps through the chosen launcher with one progress line per event,
and writes the report with a recommendation. Rerunning the same command runs only what is missing. Every
option of `python -m mtlv.train` applies to the whole study and replaces the study's own value; the study's
options are under study.* (study.seeds=[1,2], study.folds=5, study.archs=[mtl,gmtl], study.dry_run=true,
study.verbose=true). See docs/study.md.
"""
from __future__ import annotations

import logging
import sys

import mtlv.config  # noqa: F401  (registers resolvers before Hydra composes)
from mtlv.errors import entry_point


class OnceFilter(logging.Filter):
    """Passes each distinct message once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


@entry_point
def main(argv: list[str] | None = None) -> int:
    from mtlv.study.command import run_study

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    # The study's own lines are its plan and progress; the planning's INFO chatter (groupings computed, files
    # written, Lightning's device lines) stays out of them, warnings (labels without positives, ...) do not.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
                 "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:  # planning meets each cell's data: say a warning once
        handler.addFilter(OnceFilter())
    from mtlv.run.nodes import quiet_libraries

    quiet_libraries()  # no weight-loading bar in the plan when label names are embedded
    try:
        return run_study(args)
    except KeyboardInterrupt:  # Ctrl-C while planning or reporting (while a sweep runs, run_plan handles it)
        print("stopped: SIGINT ended the study; finished jobs are kept, and rerunning the same command runs only "
              "the rest", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


if __name__ == "__main__":
    sys.exit(main())
