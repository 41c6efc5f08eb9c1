"""The checks of a job, in the order they can run: each lives with the code that owns what it checks, and
this file only composes them.

- `check_options`: everything that needs no data: the option registry (mtlv/options.py: types, ranges,
  choices), the split sizes (mtlv/data/splits.py), the given groups and the affinity device
  (mtlv/grouping/checks.py), the accelerator (mtlv/launch.py) and the output folders (mtlv/layout.py);
- `check_corpus` (mtlv/data/checks.py), called where the documents are loaded: sizes and labels;
- `check_config`: the options that depend on the encoder (mtlv/models/checks.py) or the number of labels
  (mtlv/grouping/checks.py).
The command line itself is checked before Hydra composes it (mtlv/cli.py). Each failure is a
ConfigError/DataError naming the value and the fix, which the entry points print as one `error:` line
(exit code 2).
"""
from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mtlv.data.splits import validate_split_options
from mtlv.errors import entry_point
from mtlv.grouping.checks import check_affinity_device, check_grouping_options, check_groups_spec
from mtlv.launch import check_accelerator
from mtlv.layout import check_output_folders
from mtlv.models.checks import check_max_length
from mtlv.options import OPTIONS, check_values


def check_options(cfg: DictConfig) -> None:
    """Everything that needs no data: types, ranges and choices of OPTIONS, option combinations,
    the accelerator, and that the output folder can be written."""
    check_values(cfg, OPTIONS)
    if cfg.get("split") is not None:
        validate_split_options(cfg.split.folds, cfg.split.fold, cfg.split.test_size, cfg.split.val_size)
    check_groups_spec(cfg)
    check_accelerator(cfg)
    check_affinity_device(cfg)
    check_output_folders(cfg)


class PreflightCallback(Callback):
    """Hydra callback (conf/hydra/default.yaml): check the options before Hydra creates the run
    folder under paths.output_dir, so a bad value or an unwritable folder is one `error:` line.
    Sweeps are checked by the sweeper, once per cell, before any job starts."""

    @entry_point
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        check_options(config)
        _PREFLIGHT.add(_options_text(config))


# The configs PreflightCallback checked in this process (as their unresolved text without `hydra`): the
# job's spec (mtlv/run/spec.py) does not check them again.
_PREFLIGHT: set[str] = set()


def _options_text(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))


def checked_by_preflight(cfg: DictConfig) -> bool:
    return bool(_PREFLIGHT) and _options_text(cfg) in _PREFLIGHT


def check_config(cfg: DictConfig, num_labels: int, say_ignored: bool = True) -> None:
    """Options that depend on the encoder or the number of labels (after check_options). `say_ignored`: warn
    of clustering options the architecture does not use (a study's plan counts them as folded cells)."""
    check_max_length(cfg)
    check_grouping_options(cfg, num_labels, say_ignored)
