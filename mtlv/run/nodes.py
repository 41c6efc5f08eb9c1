"""A job's objects built from the config's nodes (`_target_`): the data module, the Lightning module, the
trainer with its callbacks, and the MLflow logger; and the process set up for them (torch threads, quiet
libraries). The only code below an entry that reads `cfg`: each function gets the node it instantiates,
and the job's facts from its `JobSpec` (mtlv/run/spec.py), as lightning-hydra-template's `train()` does.
"""
from __future__ import annotations

import logging
import warnings

import lightning as L
import torch
import transformers
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig

from mtlv import tracking
from mtlv.data.corpus import Corpus
from mtlv.data.splits import Split
from mtlv.io import read_json, write_json
from mtlv.layout import JobLayout
from mtlv.run.checkpoint import AtomicCheckpointIO
from mtlv.run.preempt import PreemptionCheckpoint
from mtlv.run.progress import progress_switch
from mtlv.run.spec import JobSpec, LaunchSpec
from mtlv.run.stop import StopJob, under_slurm

log = logging.getLogger(__name__)

ADVERTS = ("litlogger", "litmodels", "\N{ELECTRIC LIGHT BULB} Tip")  # Lightning's "try our product" lines


def _no_advert(record: logging.LogRecord) -> bool:
    return not any(advert in str(record.msg) for advert in ADVERTS)


def quiet_libraries() -> None:
    """One line per message: `import lightning` gives its own loggers console handlers besides
    Hydra's root handler (each INFO line came twice); no "try litlogger/litmodels" advertisement; no
    hint to use `srun` on every machine that merely has SLURM installed (MTLV's SLURM jobs are
    started by the submitit launcher, not srun); no progress bar per weight-loading."""
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _no_advert not in rank_zero.filters:
        rank_zero.addFilter(_no_advert)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system.*")
    transformers.utils.logging.disable_progress_bar()


def configure_torch(launch: LaunchSpec) -> None:
    if launch.threads and not launch.threads_given:
        log.info("torch uses %d CPU thread(s) (torch_threads unset; %d cores, parallel jobs or SLURM's share)",
                 launch.threads, launch.cores)
    if launch.threads:
        torch.set_num_threads(int(launch.threads))
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def make_logger(logger_cfg: DictConfig | None, spec: JobSpec, run_name: str,
                tags: dict) -> tuple[object | None, str | None]:
    """The `logger` node's MLflow logger for the spec's job (its run resumed when the job resumes)."""
    if logger_cfg is None or spec.tracking is None:
        return None, None
    uri, exp, job = spec.tracking.uri, spec.tracking.experiment_id, spec.job
    saved = job.mlflow_run
    run_id = read_json(saved)["run_id"] if saved.exists() and spec.resume else None
    tracking.end_orphans(uri, exp, {"mtlv.job_dir": str(job.folder), "mtlv.role": "job"}, keep=run_id)
    where = {"artifact_location": None} if tracking.is_server(uri) else {}  # a server decides where artifacts go
    logger = instantiate(logger_cfg, experiment_name=spec.tracking.experiment,
                         tracking_uri=tracking.with_busy_timeout(uri), run_name=run_name, tags=tags, run_id=run_id,
                         **where)
    write_json(saved, {"run_id": logger.run_id, "tracking_uri": uri})
    return logger, uri


def build_datamodule(data_cfg: DictConfig, model_cfg: DictConfig, corpus: Corpus, split: Split, cols: list[int],
                     cache_dir: str, seed: int) -> L.LightningDataModule:
    """The `data` node's DataModule (`_target_`, with data.batch_size etc.) for this job's label columns
    `cols`, tokenized for the model's encoder. (A partial first: the corpus and split are dataclasses,
    which Hydra would turn into configs if they were passed to `instantiate` itself.)"""
    make = instantiate(data_cfg, _partial_=True)
    return make(corpus, split, model_cfg.name_or_path, int(model_cfg.max_length), label_indices=cols,
                cache_dir=cache_dir, seed=seed, trust_remote_code=bool(model_cfg.trust_remote_code))


def build_module(module_cfg: DictConfig, heads: list[list[int]], label_names: list[str]):
    return instantiate(module_cfg, groups=heads, label_names=label_names, _convert_="all")


def build_trainer(trainer_cfg: DictConfig, callbacks_cfg: DictConfig | None, job: JobLayout, logger,
                  gpu: int | None = None) -> tuple[L.Trainer, object | None]:
    """The `trainer` node's trainer with the `callbacks` node's callbacks, checkpoints in the job folder, and
    the pre-emption checkpoint; `gpu`: the GPU the job is pinned to (`LaunchSpec.gpu`). Returns the trainer
    and the model checkpoint callback (None without one)."""
    callbacks = {name: instantiate(c) for name, c in (callbacks_cfg or {}).items() if c}
    extra = {"devices": [gpu]} if gpu is not None else {}
    callbacks, extra["enable_progress_bar"] = progress_switch(callbacks, trainer_cfg.get("enable_progress_bar", True))
    checkpoint = callbacks.get("model_checkpoint")
    if checkpoint is not None:
        checkpoint.dirpath = str(job.checkpoints)
    # SIGUSR1, SLURM's SIGTERM, a plain job's SIGTERM (mtlv/run/stop.py): save at a batch boundary, exit
    callbacks["preemption"] = PreemptionCheckpoint(job.last_checkpoint, sigterm=StopJob.active is not None)
    if checkpoint is None and trainer_cfg.get("enable_checkpointing") is None:
        # Without MTLV's checkpoint callback Lightning adds its own default one, which writes a full
        # checkpoint (MiniLM with AdamW state: ~270 MB) per job under the working folder that nothing reads.
        extra["enable_checkpointing"] = False
    if not trainer_cfg.get("plugins"):  # checkpoints written atomically, loaded weights-only
        extra["plugins"] = [AtomicCheckpointIO()]
        if under_slurm():  # pre-emption is PreemptionCheckpoint's job, not Lightning's handler
            extra["plugins"].append(SLURMEnvironment(auto_requeue=False))
    trainer = instantiate(trainer_cfg, callbacks=list(callbacks.values()), logger=logger or False, **extra)
    return trainer, checkpoint
