"""What every command line goes through before Hydra composes it: the values of options that Hydra types
itself (TYPED_BY_HYDRA) are checked against the option registry (mtlv/options.py), so a wrong one is one
`error:` line (exit 2), not Hydra's own multi-line message."""
from __future__ import annotations

from typing import Callable

from mtlv.errors import ConfigError, report_and_exit
from mtlv.options import OPTIONS

# Options whose node Hydra itself types while it composes (the joblib launcher's structured config): a value of
# the wrong type ends composition with Hydra's own multi-line message, before the option checks can run.
TYPED_BY_HYDRA = ("hydra.launcher.",)


def check_command_line(args: list[str]) -> None:
    """Check the command's values of options Hydra types (TYPED_BY_HYDRA) as OPTIONS would, before Hydra
    composes: `hydra.launcher.n_jobs=abc` is then one `error:` line naming what it accepts."""
    options = {o.key: o for o in OPTIONS if o.key.startswith(TYPED_BY_HYDRA)}
    mine = [a for a in args if a.split("=", 1)[0].lstrip("+~") in options and "=" in a]
    if not mine:
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(mine)
    except HydraException:  # the override's own syntax: Hydra says what is wrong with it
        return
    for override in parsed:
        if override.is_sweep_override() or override.is_delete():
            continue
        option, value = options[override.key_or_group], override.value()
        if (problem := option.problem(value)) is not None:
            raise ConfigError(option.message(value, problem))


def command_line_checked(main: Callable) -> Callable:
    """Wraps a @hydra.main entry point: check_command_line on sys.argv first (one `error:` line, exit 2)."""
    import functools
    import sys

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            check_command_line(sys.argv[1:])
        except ConfigError as err:
            report_and_exit(err)
        return main(*args, **kwargs)

    return run
