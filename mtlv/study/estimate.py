"""How long a study's jobs will take on this machine: from the jobs it already ran (their result.json
records how much they trained and on which host), or, where there are none, from a short probe that trains
the study's own model on its own data for a few steps.

A job's seconds = fixed + per_doc x its work units (mtlv/run/cost.py: training documents x epochs plus the
documents it scores, weighted), where `fixed` is what a job costs besides (loading the encoder, tokenizing,
writing its files). Jobs of one speed class (`cost.speed_key`) share a speed.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from mtlv.run.cost import EVAL_WEIGHT, host, units

log = logging.getLogger(__name__)
HISTORY_LIMIT = 400     # the newest finished jobs of a speed class that the fit reads

# What a study's run costs besides the jobs' own elapsed_s (result.json times a job from its data to its
# predictions), measured on a 2-core CPU machine with the tiny model (docs/study.md, *The estimate*):
# - each sweep (`python -m mtlv.train -m ...`) starts a Python process that imports torch, Lightning and MLflow,
#   composes its cells, reads their groupings and opens their MLflow runs before its first job, and aggregates
#   and exits after its last one;
# - each job loads its corpus and grouping before its clock starts, and writes its predictions, exported
#   weights and MLflow run after it stops.
# Left out, these made the estimate of a small study 10x low (plan 8 s, real 78 s; issue 28). Measured: a 1-job
# and a 3-job sweep (60 documents, 1 thread, basic launcher) took 48.8 s and 62.8 s of wall-clock while their
# jobs recorded 4.9 s and 8.3 s: ~5 s per job and ~39 s per sweep besides, on a machine shared with other
# work (the 1-job sweep used 12.7 s of CPU in all); the issue measured 15-20 s per sweep on its machine.
SWEEP_START_S = 20.0
JOB_FIXED_S = 5.0


@dataclass(frozen=True)
class Speed:
    fixed_s: float
    per_doc_s: float     # seconds per training document and epoch
    source: str          # where the numbers come from, for the plan's text
    eval_weight: float = EVAL_WEIGHT   # cost of scoring a document / training on it

    def seconds(self, work: dict) -> float:
        return self.fixed_s + self.per_doc_s * units(work, self.eval_weight)


def from_history(runs_dir: str | Path, key: str) -> Speed | None:
    """The speed of the jobs of this class that this machine finished (trained, not reused), fitted."""
    points = []
    for path in sorted(Path(runs_dir).glob("*/*/*/result.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if result.get("speed_key") != key or "reused_from" in result or result.get("host") != host():
            continue
        points.append((units(result["work"]), float(result["elapsed_s"])))
        if len(points) >= HISTORY_LIMIT:
            break
    if not points:
        return None
    x, y = np.array(points).T
    if len(points) >= 3 and np.ptp(x) > 0.2 * x.mean():  # sizes differ enough to separate the fixed part
        slope, fixed = np.polyfit(x, y, 1)
        if slope > 0 and fixed >= 0:
            return Speed(float(fixed), float(slope), f"{len(points)} earlier jobs on this machine")
    return Speed(0.0, float(np.median(y / x)), f"{len(points)} earlier job(s) on this machine")


class _StepTimer:
    """Seconds of each training batch after the first `warmup` (allocations, lazy init)."""

    def __init__(self, warmup: int = 2) -> None:
        self.warmup, self.times, self._start = warmup, [], 0.0

    def hooks(self):
        import lightning as L

        timer = self

        class Hooks(L.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                timer._start = time.perf_counter()

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                if batch_idx >= timer.warmup:
                    timer.times.append(time.perf_counter() - timer._start)

        return Hooks()


def probe(cfg: DictConfig, steps: int = 8) -> Speed:
    """Train `cfg`'s model on its own data for a few steps (with the threads its jobs will use) and time it."""
    import lightning as L
    import torch

    from mtlv.data.splits import load_or_make_split
    from mtlv.data.load import load_corpus
    from mtlv.run.nodes import build_datamodule, build_module, quiet_libraries
    from mtlv.run.spec import LaunchSpec

    quiet_libraries()
    before = torch.get_num_threads()
    torch.set_num_threads(LaunchSpec.resolve(cfg).torch_threads())
    try:
        start = time.perf_counter()
        corpus = load_corpus(cfg)
        split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
        cols = list(range(corpus.num_labels))
        dm = build_datamodule(cfg.data, cfg.model, corpus, split, cols, cfg.paths.cache_dir, int(cfg.seed))
        module = build_module(cfg.model.module, [cols], list(corpus.label_names))
        timer = _StepTimer()
        kwargs = dict(accelerator=str(cfg.trainer.accelerator), devices=1, precision=cfg.trainer.precision,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer = L.Trainer(max_steps=steps + timer.warmup, limit_val_batches=0, num_sanity_val_steps=0,
                            callbacks=[timer.hooks()], **kwargs)
        trainer.fit(module, datamodule=dm)
        setup = time.perf_counter() - start - sum(timer.times)
        per_train = float(np.mean(timer.times)) / int(cfg.data.batch_size)
        scorer = L.Trainer(limit_predict_batches=2, **kwargs)
        loaders = dm.predict_dataloader()
        t0 = time.perf_counter()
        batches = scorer.predict(module, dataloaders=loaders[0] if isinstance(loaders, (list, tuple)) else loaders)
        scored = sum(len(b["probs"]) for b in batches) or 1
        per_eval = (time.perf_counter() - t0) / scored
    finally:
        torch.set_num_threads(before)
    weight = per_eval / per_train if per_train > 0 else EVAL_WEIGHT
    log.debug("probe: %.4f s per training document, scoring %.2f of that, setup %.1f s", per_train, weight, setup)
    return Speed(setup, per_train, f"a {steps}-step probe on this machine", weight)


def study_seconds(job_seconds: list[float], sweeps: int, parallel: int | None) -> tuple[float, float | None]:
    """(the jobs' summed seconds, the wall-clock of the run) for jobs whose seconds each include JOB_FIXED_S,
    run `parallel` at a time (None: SLURM's queue decides, no wall-clock), by `sweeps` sweeps one after another,
    each with its start-up."""
    total = float(sum(job_seconds))
    if not parallel:
        return total, None
    return total, total / parallel + sweeps * SWEEP_START_S
