"""`reuse_models`: a model is keyed by what it trains on, not by how its labels were chosen.

A group model does not depend on the grouping method that found its labels: the STL job of label X
and a GMTL singleton group (X) train the same model, and so do the same GMTL group found by two
clusterings, or two GMHL cells with the same partition. The *model key* hashes what training reads
(data, split, seed, model and training options, the job's labels in column order and its heads; a loss
spelled two ways, `weighting=sum` and `loss_reduction=sum`, is one key);
the registry maps it to the job folder that trained it, and `run_job` reuses that job's predictions
instead of training the same model again.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

from mtlv.io import read_json, stable_hash, write_json
from mtlv.layout import JobLayout, ModelRegistry
from mtlv.weighting import reduction_of

log = logging.getLogger(__name__)

# Config nodes that choose labels or score predictions but never change how a model trains: the
# clustering (which found the labels; the labels themselves are in the key), the architecture's
# name and how its labels were grouped (the key has the labels and heads; `arch.placement` stays),
# and `eval` (the threshold is chosen again from the predictions; weights are copied when exported).
NOT_TRAINING = ("clustering", "eval")


def model_base(identity: dict, placement: str, data_fingerprint: str) -> dict:
    """What every model of a cell trains on besides its labels and heads (`JobSpec.model_base`), from the
    cell's `config.identity`; `identity` is not changed."""
    data = copy.deepcopy({k: v for k, v in identity.items() if k not in NOT_TRAINING})
    data["arch"] = {"placement": placement}
    data["data_fingerprint"] = data_fingerprint
    if (reduction := reduction_of(data.get("weighting"))) is not None:
        # `weighting=sum|mean|static` trains exactly the model of `model.module.loss_reduction=sum|mean|weighted`
        # (the default GMHL loss is the sum): one model, one key, trained once.
        del data["weighting"]
        module = data["model"]["module"]
        module["weighting"] = None
        module["loss_reduction"], module["head_weights"] = reduction
    return data


def model_key(base: dict, label_names: list[str], heads: list[list[int]]) -> str:
    """Equal for two jobs exactly when they train the same model (`base`: `model_base`)."""
    return stable_hash({**base, "labels": [str(n) for n in label_names],  # in column order: heads index into it
                        "heads": [[int(j) for j in head] for head in heads]})


def job_model_keys(base: dict, grouping, group_indices: list[int | None]) -> list[str]:
    """The model keys of the job(s) training these groups of `grouping` (None: the one model of MTL/GMHL)."""
    names = grouping.label_names
    keys = []
    for i in group_indices:
        cols, heads = grouping.job_labels(i)
        keys.append(model_key(base, [names[j] for j in cols], heads))
    return keys


def register(reg: ModelRegistry, key: str, job: JobLayout) -> None:
    """Record that `job` (finished: its result.json is written) trained the model `key`."""
    try:
        folder = Path(job.folder).resolve().relative_to(reg.runs_dir.resolve())
    except ValueError:  # a job folder outside runs_dir cannot be found again from it
        return
    write_json(reg.entry(key), {"model_key": key, "folder": str(folder)})


def trained_source(reg: ModelRegistry, key: str, job: JobLayout, wants_weights: bool) -> JobLayout | None:
    """The finished job that trained model `key` in `reg` (None: train). Whether the job may reuse at all
    (reuse_models and resume) is the caller's: `JobSpec.reuses`."""
    entry = reg.entry(key)
    if not entry.exists():
        return None
    source = JobLayout(reg.runs_dir / read_json(entry)["folder"])
    if source.folder.resolve() == Path(job.folder).resolve() or not source.result_json.exists():
        return None
    if read_json(source.result_json).get("model_key") != key:  # retrained since with other options
        return None
    if not (source.predictions("val").exists() and source.predictions("test").exists()):
        return None
    if wants_weights and not source.export.exists():
        log.info("the model of %s has no exported weights and eval.save_weights=true: training it here",
                 source.folder)
        return None
    return source


def launch_waves(job_keys: list[list[str]]) -> list[list[int]]:
    """The sweep's jobs (by index) in launches one after another, so that no two jobs of one launch
    train the same model (they would run at the same time): a job waits for a later launch when a
    model it would train is trained by an earlier job of its launch; then it reuses it. One model
    key per job (the usual case) gives at most two launches: first of each model, then the rest."""
    waves, done, left = [], set(), list(range(len(job_keys)))
    while left:
        wave, claimed, later = [], set(), []
        for i in left:
            new = set(job_keys[i]) - done
            if new & claimed:
                later.append(i)
            else:
                wave.append(i)
                claimed |= new
        waves.append(wave)
        done |= claimed
        left = later
    return waves
