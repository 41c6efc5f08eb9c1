#!/usr/bin/env python
"""MTLV's performance benchmark: one process, same data, model, batch size, optimizer steps and seed
for every contender; contenders alternate (A B C D, B C D A, ...) over the repeats and the report
gives medians, spreads and ratios measured within each repeat (robust to a noisy, shared machine).

Sections
  data      tokenization throughput cold, cache write and load, padding waste per batching scheme
  training  MTLV (Lightning Trainer + MultiTaskModule + MultiLabelDataModule, as `mtlv/job.py`
            builds them) vs a plain PyTorch loop on the same batches (MTLV's overhead), vs the
            Hugging Face Trainer + AutoModelForSequenceClassification (a) padding to max_length,
            (b) dynamic padding + group_by_length; samples/s, real (non-pad) tokens/s, peak memory,
            test F1-macro (threshold 0.5 and MTLV's validation-chosen threshold) for every contender
  e2e       `python -m mtlv.train arch=stl|gmtl|mtl` as subprocesses (the real user path)

Usage: python scripts/bench.py [--steps N | --epochs E] [--repeats R] [--batch-size B]
       [--max-length L] [--data PATH|demo] [--model minilm|tiny] [--out DIR] [--skip-e2e] [--gpu]
       [--threads T] [--budget-s S] [--contenders a,b] [--overrides "k=v ..."]   (--help: all flags)
Writes DIR/bench.json and DIR/bench.md (default DIR: outputs/bench). docs/performance.md explains
the method and shows a measured run.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

CONTENDERS = {
    "plain": "plain PyTorch loop: same model, same batches (MTLV's DataLoader), AdamW, same schedule and clipping",
    "mtlv": "MTLV: Lightning Trainer fitting MultiTaskModule on MultiLabelDataModule (dynamic padding, "
            "length-grouped batches), default callbacks (checkpoint save_last, progress bar), MLflow off",
    "hf_max_length": "HF Trainer + AutoModelForSequenceClassification, inputs padded to max_length "
                     "(the reference study and most tutorials)",
    "hf_group_by_length": "HF Trainer + AutoModelForSequenceClassification, dynamic padding "
                          "(DataCollatorWithPadding) + train_sampling_strategy='group_by_length'",
}
GOALS = {"mtlv_vs_plain": 0.95, "mtlv_vs_hf_max_length": 1.8, "mtlv_vs_hf_group_by_length": 1.0}
# Dense bf16 peak FLOP/s by GPU name (substring, first match wins); --peak-tflops overrides.
PEAK_BF16_TFLOPS = [("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("GH200", 989.4), ("B200", 2250.0),
                    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10G", 125.0), ("A10", 125.0),
                    ("RTX 4090", 165.0), ("V100", 125.0), ("T4", 65.0)]

log = logging.getLogger("bench")


# ----------------------------------------------------------------------------- small helpers
def default_data() -> str:
    data_dir = Path(os.environ.get("MTLV_DATA_DIR", ROOT.parent / "shared" / "data"))
    csv = data_dir / "openi" / "indiana_reports.csv"
    return str(csv) if csv.exists() else "demo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=16, help="optimizer steps per training run (default 16)")
    p.add_argument("--epochs", type=float, default=None,
                   help="train this many epochs instead of --steps (the full quality comparison)")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="steps left out of the steady-state timing (default: min(3, steps // 4))")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats of every contender (default 3)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=None, help="tokens per document (default: the model's, 128)")
    p.add_argument("--data", default=None, help="Open-I CSV path, or 'demo' (default: Open-I when found, else demo)")
    p.add_argument("--limit", type=int, default=None, help="keep a seeded random subset of this many documents")
    p.add_argument("--model", default="minilm", help="MTLV model option: minilm (packaged MiniLM) or tiny")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset of " + ",".join(CONTENDERS))
    p.add_argument("--no-quality", action="store_true", help="skip the test-F1 evaluation")
    p.add_argument("--full-quality", action="store_true",
                   help="also predict validation and report test F1 at MTLV's validation-chosen threshold "
                        "(default with --epochs; otherwise test F1 at 0.5 only, on the first repeat)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--overrides", default="",
                   help="extra MTLV config overrides, space-separated (model hyperparameters such as "
                        "model.module.pooling or model.module.lr apply to every contender)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads for every contender (CPU default 1: steady on a shared machine, and "
                        "process CPU time then measures the work; 0: torch's default, all cores)")
    p.add_argument("--budget-s", type=float, default=840,
                   help="stop adding training repeats, and skip the end-to-end section, when the run would go "
                        "past this many seconds (default 840; 0: no limit)")
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench"))
    p.add_argument("--gpu", action="store_true", help="CUDA, bf16 autocast, TF32 and fused AdamW for every contender")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak bf16 TFLOP/s for the MFU estimate")
    p.add_argument("--skip-data", action="store_true", help="skip the data-pipeline section")
    p.add_argument("--skip-training", action="store_true", help="skip the training section")
    p.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end STL/GMTL/MTL section")
    p.add_argument("--e2e-model", default="tiny", help="model option of the end-to-end runs (default tiny)")
    p.add_argument("--e2e-limit", type=int, default=200, help="documents in the end-to-end runs (default 200; 0: all)")
    p.add_argument("--e2e-epochs", type=int, default=1)
    p.add_argument("--e2e-k", type=int, default=5, help="GMTL's number of task groups (default 5)")
    p.add_argument("--e2e-repeats", type=int, default=1)
    p.add_argument("--e2e-args", default="", help="extra overrides for the end-to-end runs, space-separated")
    args = p.parse_args(argv)
    args.data = args.data or default_data()
    unknown = set(args.contenders.split(",")) - set(CONTENDERS)
    if unknown:
        p.error(f"unknown contender(s) {sorted(unknown)}; choose from {list(CONTENDERS)}")
    if args.gpu and not torch.cuda.is_available():
        p.error("--gpu: CUDA is not available on this machine")
    if args.threads is None:
        args.threads = 0 if args.gpu else 1
    return args


def current_rss_mb() -> float:
    try:
        return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


class PeakMemory:
    """Peak memory of a block: GPU allocator peak on CUDA; on CPU the resident-set high-water mark,
    reset per block through /proc/self/clear_refs (Linux), else the process's lifetime peak."""

    def __init__(self, gpu: bool) -> None:
        self.gpu = gpu

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.start_rss = current_rss_mb()
        self.reset = False
        if self.gpu:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.peak_rss = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
        except (OSError, AttributeError):
            self.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        self.peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if self.gpu else None

    def as_dict(self) -> dict:
        out = {"peak_rss_mb": round(self.peak_rss, 1), "rss_growth_mb": round(self.peak_rss - self.start_rss, 1),
               "rss_peak_is_per_run": self.reset}
        if self.gpu:
            out["peak_gpu_mb"] = round(self.peak_gpu, 1)
        return out


class Clock:
    """Timestamps at the end of optimizer steps `warmup` and `total` (with a device sync there only)."""

    def __init__(self, warmup: int, total: int, gpu: bool) -> None:
        self.warmup, self.total, self.gpu, self.marks, self.cpu = warmup, total, gpu, {}, {}

    def step_done(self, step: int) -> None:
        if step in (self.warmup, self.total) and step not in self.marks:
            if self.gpu:
                torch.cuda.synchronize()
            self.marks[step] = time.perf_counter()
            self.cpu[step] = time.process_time()

    @property
    def steady_s(self) -> float:
        return self.marks[self.total] - self.marks[self.warmup]

    @property
    def steady_cpu_s(self) -> float:
        """Process CPU time (all threads) over the same steps: less sensitive to other load."""
        return self.cpu[self.total] - self.cpu[self.warmup]


def summarize(values: list[float]) -> dict:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


@contextlib.contextmanager
def quiet():
    """Progress bars (left on, as users run them) draw into a buffer instead of the terminal."""
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(buffer), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield buffer


def fmt_load(load) -> str:
    return "-" if not load else "/".join(f"{x:.1f}" for x in load)


def fmt(x, digits=2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


# ----------------------------------------------------------------------------- the shared setup
class Context:
    """Data, config and tokens shared by every contender (built once, outside any timing)."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from mtlv.cell import load_corpus
        from mtlv.config import compose
        from mtlv.data.splits import load_or_make_split
        from mtlv.data.tokenize import tokenize_cached
        from mtlv.models.encoder import load_tokenizer

        self.args, self.workdir = args, workdir
        self.full_quality = bool(args.full_quality or args.epochs)
        self.device = torch.device("cuda" if args.gpu else "cpu")
        self.gpu = bool(args.gpu)
        overrides = [f"model={args.model}", "arch=mtl", "logger=none", f"seed={args.seed}",
                     f"data.batch_size={args.batch_size}", f"paths.output_dir={workdir}",
                     "trainer=gpu" if args.gpu else "trainer=cpu"]
        if args.gpu:
            overrides.append("model.module.fused_adamw=true")
        if args.max_length:
            overrides.append(f"model.max_length={args.max_length}")
        if args.data == "demo":
            overrides.append("dataset=demo")
        else:
            overrides += ["dataset=openi", f"dataset.source.path={args.data}", "dataset.source.download=false"]
        if args.limit:
            overrides.append(f"dataset.limit={args.limit}")
        overrides += [o for o in args.overrides.split() if o]
        self.overrides = overrides
        self.cfg = cfg = compose(overrides)
        self.corpus = load_corpus(cfg)
        self.split = load_or_make_split(self.corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
        self.tokenizer = load_tokenizer(cfg.model.name_or_path)
        self.max_length = int(cfg.model.max_length)
        self.tokens = tokenize_cached(self.corpus.texts, self.tokenizer, self.max_length, cfg.paths.cache_dir)
        self.labels = self.corpus.labels
        self.label_names = list(self.corpus.label_names)
        self.num_labels = len(self.label_names)
        self.hp = cfg.model.module
        self.batch_size = int(cfg.data.batch_size)
        n_train = len(self.split.train)
        self.steps_per_epoch = math.ceil(n_train / self.batch_size)
        if args.epochs:
            self.total_steps = max(1, int(round(args.epochs * self.steps_per_epoch)))
        else:
            self.total_steps = int(args.steps)
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        warm = args.warmup_steps if args.warmup_steps is not None else min(3, self.total_steps // 4)
        self.warmup = max(0, min(int(warm), self.total_steps - 1))

    # -- models -------------------------------------------------------------------------------
    def encoder(self) -> torch.nn.Module:
        from mtlv.models.encoder import load_encoder

        ri = self.hp.random_init
        return load_encoder(self.cfg.model.name_or_path, False, dict(ri) if ri else None, int(self.cfg.seed))

    def hf_classifier(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

        from mtlv.models.encoder import resolve_name

        kwargs = dict(num_labels=self.num_labels, problem_type="multi_label_classification")
        if self.hp.random_init:
            config = BertConfig(vocab_size=len(self.tokenizer), **dict(self.hp.random_init), **kwargs)
            return BertForSequenceClassification(config)
        return AutoModelForSequenceClassification.from_pretrained(resolve_name(self.cfg.model.name_or_path), **kwargs)

    def datamodule(self):
        from mtlv.data.datamodule import MultiLabelDataModule

        cfg = self.cfg
        return MultiLabelDataModule(self.corpus, self.split, cfg.model.name_or_path, self.max_length,
                                    label_indices=list(range(self.num_labels)), cache_dir=cfg.paths.cache_dir,
                                    seed=int(cfg.seed), **cfg.data)

    def mtlv_step_counts(self) -> list[tuple[int, int, int]]:
        """(samples, real tokens, padded tokens) of each optimizer step of MTLV's (and the plain
        loop's) training batches: the sampler is seeded, so the batches are known in advance."""
        dm = self.datamodule()
        lengths = dm.dataset("train").lengths
        sampler = dm.train_dataloader().sampler
        counts = []
        for epoch in range(self.epochs):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            order = np.fromiter(iter(sampler), dtype=np.int64)
            for start in range(0, len(order), self.batch_size):
                chunk = lengths[order[start:start + self.batch_size]]
                counts.append((len(chunk), int(chunk.sum()), int(len(chunk) * chunk.max())))
        return counts[: self.total_steps]

    def hf_dataset(self, part: str, pad_to_max: bool) -> list[dict]:
        index = getattr(self.split, part)
        pad_id = self.tokenizer.pad_token_id or 0
        items = []
        for doc in index:
            ids = self.tokens[int(doc)].tolist()
            mask = [1] * len(ids)
            if pad_to_max:
                extra = self.max_length - len(ids)
                ids, mask = ids + [pad_id] * extra, mask + [0] * extra
            items.append({"input_ids": ids, "attention_mask": mask,
                          "labels": self.labels[int(doc)].astype(np.float32).tolist()})
        return items

    def param_groups(self, encoder: torch.nn.Module, head: torch.nn.Module) -> list[dict]:
        """MTLV's AdamW parameter groups (see MultiTaskModule.configure_optimizers)."""
        hp = self.hp
        no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
        enc = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in enc if not any(k in n for k in no_decay)], "lr": hp.lr, "weight_decay": hp.weight_decay},
            {"params": [p for n, p in enc if any(k in n for k in no_decay)], "lr": hp.lr, "weight_decay": 0.0},
            {"params": list(head.parameters()), "lr": hp.head_lr or hp.lr, "weight_decay": hp.weight_decay},
        ]
        return [g for g in groups if g["params"]]

    def scheduler(self, optimizer):
        from transformers import get_linear_schedule_with_warmup

        hp, total = self.hp, self.total_steps
        if hp.schedule == "constant" and not hp.warmup_ratio:
            return None
        return get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total),
                                               total if hp.schedule == "linear" else 10**12)

    def autocast(self):
        if self.gpu:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


# ----------------------------------------------------------------------------- quality
def quality(ctx: Context, val: tuple[np.ndarray, np.ndarray] | None, test: tuple[np.ndarray, np.ndarray]) -> dict:
    """Test F1 by one rule for all contenders: at 0.5, and (with validation predictions) at MTLV's
    validation-chosen threshold."""
    from mtlv.evaluation.evaluate import evaluate
    from mtlv.evaluation.metrics import multilabel_metrics
    from mtlv.evaluation.predictions import Predictions

    if val is None:
        m = multilabel_metrics(np.asarray(test[0], dtype=np.float64), np.asarray(test[1]).astype(np.uint8), 0.5,
                               ctx.label_names)
        return {"test_f1_macro_at_0.5": m["f1_macro"], "test_f1_micro_at_0.5": m["f1_micro"],
                "test_docs": int(len(test[0]))}

    def preds(pair):
        probs, targets = pair
        return Predictions([str(i) for i in range(len(probs))], np.asarray(probs, dtype=np.float64),
                           np.asarray(targets).astype(np.uint8), ctx.label_names)

    report = evaluate(preds(val), preds(test))
    return {"test_f1_macro_at_0.5": report["test_at_0.5"]["f1_macro"],
            "test_f1_micro_at_0.5": report["test_at_0.5"]["f1_micro"],
            "test_f1_macro": report["test"]["f1_macro"], "val_threshold": report["threshold"],
            "test_docs": int(len(test[0]))}


@torch.no_grad()
def predict_loader(ctx: Context, forward, loader) -> tuple[np.ndarray, np.ndarray]:
    probs, targets = [], []
    for batch in loader:
        with ctx.autocast():
            logits = forward(batch["input_ids"].to(ctx.device), batch["attention_mask"].to(ctx.device))
        probs.append(torch.sigmoid(logits.float()).cpu())
        targets.append(batch["labels"])
    return torch.cat(probs).numpy(), torch.cat(targets).numpy()


# ----------------------------------------------------------------------------- contenders
def run_mtlv(ctx: Context, evaluate_quality: bool) -> dict:
    import lightning as L
    from hydra.utils import instantiate

    cfg = ctx.cfg
    clock = Clock(ctx.warmup, ctx.total_steps, ctx.gpu)

    class StepClock(L.Callback):
        def on_train_batch_end(self, trainer, *_):
            clock.step_done(trainer.global_step)

    with PeakMemory(ctx.gpu) as mem:
        L.seed_everything(int(cfg.seed), verbose=False)
        module = instantiate(cfg.model.module, groups=[list(range(ctx.num_labels))], label_names=ctx.label_names,
                             _convert_="all")
        ckpt_dir = Path(tempfile.mkdtemp(prefix="mtlv-ckpt-", dir=ctx.workdir))
        start = time.perf_counter()
        dm = ctx.datamodule()
        callbacks = {name: instantiate(c) for name, c in (cfg.get("callbacks") or {}).items() if c}
        if "model_checkpoint" in callbacks:
            callbacks["model_checkpoint"].dirpath = str(ckpt_dir)
        trainer = instantiate(cfg.trainer, callbacks=[*callbacks.values(), StepClock()], logger=False,
                              max_steps=ctx.total_steps, max_epochs=ctx.epochs, limit_val_batches=0,
                              default_root_dir=str(ckpt_dir))
        trainer.fit(module, datamodule=dm)
        if ctx.gpu:
            torch.cuda.synchronize()
        total_s = time.perf_counter() - start
    out = {"total_s": total_s, "steady_s": clock.steady_s, "steady_cpu_s": clock.steady_cpu_s, "steps": int(trainer.global_step), **mem.as_dict(),
           "checkpoint_written": any(ckpt_dir.glob("*.ckpt"))}
    if evaluate_quality:
        def part(loader):  # Trainer.predict, as mtlv/job.py predicts (rows come back in length order)
            batches = trainer.predict(module, dataloaders=loader)
            probs = torch.cat([b["probs"] for b in batches]).cpu().double().numpy()
            docs = torch.cat([b["doc_index"] for b in batches]).cpu().numpy()
            return probs, dm.labels[docs]

        val = part(dm.val_dataloader()) if ctx.full_quality else None
        out["quality"] = quality(ctx, val, part(dm.test_dataloader()))
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out


def run_plain(ctx: Context, evaluate_quality: bool) -> dict:
    import lightning as L
    import torch.nn.functional as F
    from torch import nn

    hp, dev = ctx.hp, ctx.device
    clock = Clock(ctx.warmup, ctx.total_steps, ctx.gpu)
    with PeakMemory(ctx.gpu) as mem:
        L.seed_everything(int(ctx.cfg.seed), verbose=False)
        encoder = ctx.encoder()
        head = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(encoder.config.hidden_size, ctx.num_labels))
        encoder.to(dev).train()
        head.to(dev).train()
        params = [p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad]

        def forward(input_ids, mask):
            hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            if hp.pooling == "mean":
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            else:
                pooled = hidden[:, 0]
            return head(pooled)

        start = time.perf_counter()
        optimizer = torch.optim.AdamW(ctx.param_groups(encoder, head), lr=hp.lr, fused=ctx.gpu or None)
        scheduler = ctx.scheduler(optimizer)
        dm = ctx.datamodule()
        loader = dm.train_dataloader()
        clip = ctx.cfg.trainer.gradient_clip_val
        step = 0
        for epoch in range(ctx.epochs):
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            for batch in loader:
                input_ids = batch["input_ids"].to(dev, non_blocking=True)
                mask = batch["attention_mask"].to(dev, non_blocking=True)
                labels = batch["labels"].to(dev, non_blocking=True)
                with ctx.autocast():
                    logits = forward(input_ids, mask)
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(params, float(clip))
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
                clock.step_done(step)
                if step >= ctx.total_steps:
                    break
            if step >= ctx.total_steps:
                break
        if ctx.gpu:
            torch.cuda.synchronize()
        total_s = time.perf_counter() - start
    out = {"total_s": total_s, "steady_s": clock.steady_s, "steady_cpu_s": clock.steady_cpu_s, "steps": step, **mem.as_dict()}
    if evaluate_quality:
        encoder.eval()
        head.eval()
        val = predict_loader(ctx, forward, dm.val_dataloader()) if ctx.full_quality else None
        out["quality"] = quality(ctx, val, predict_loader(ctx, forward, dm.test_dataloader()))
    return out


class CountingCollator:
    """Wraps a collator and records each batch's samples, real tokens and padded tokens."""

    def __init__(self, inner) -> None:
        self.inner, self.counts = inner, []

    def __call__(self, features):
        batch = self.inner(features)
        mask = batch["attention_mask"]
        self.counts.append((int(mask.shape[0]), int(mask.sum()), int(mask.numel())))
        return batch


def run_hf(ctx: Context, pad_to_max: bool, evaluate_quality: bool) -> dict:
    import lightning as L
    from transformers import (DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments,
                              default_data_collator)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hp = ctx.hp
    clock = Clock(ctx.warmup, ctx.total_steps, ctx.gpu)

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.step_done(state.global_step)

    train = ctx.hf_dataset("train", pad_to_max)
    collator = CountingCollator(default_data_collator if pad_to_max else DataCollatorWithPadding(ctx.tokenizer))
    outdir = Path(tempfile.mkdtemp(prefix="hf-", dir=ctx.workdir))
    with PeakMemory(ctx.gpu) as mem:
        L.seed_everything(int(ctx.cfg.seed), verbose=False)
        model = ctx.hf_classifier()
        model.train()
        schedule = {"linear": "linear", "constant": "constant_with_warmup"}[hp.schedule]
        start = time.perf_counter()
        targs = TrainingArguments(
            output_dir=str(outdir), per_device_train_batch_size=ctx.batch_size,
            per_device_eval_batch_size=int(ctx.cfg.data.eval_batch_size), max_steps=ctx.total_steps,
            learning_rate=float(hp.lr), weight_decay=float(hp.weight_decay), warmup_steps=float(hp.warmup_ratio),
            lr_scheduler_type=schedule, max_grad_norm=float(ctx.cfg.trainer.gradient_clip_val or 0.0),
            save_strategy="no", eval_strategy="no", report_to="none", seed=int(ctx.cfg.seed),
            data_seed=int(ctx.cfg.seed), dataloader_num_workers=0,
            train_sampling_strategy="random" if pad_to_max else "group_by_length",
            bf16=ctx.gpu, tf32=True if ctx.gpu else None, optim="adamw_torch_fused" if ctx.gpu else "adamw_torch",
            use_cpu=not ctx.gpu,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=collator,
                          processing_class=ctx.tokenizer, callbacks=[StepClock()])
        trainer.train()
        if ctx.gpu:
            torch.cuda.synchronize()
        total_s = time.perf_counter() - start
    out = {"total_s": total_s, "steady_s": clock.steady_s, "steady_cpu_s": clock.steady_cpu_s, "steps": int(trainer.state.global_step),
           "counts": collator.counts[: ctx.total_steps], **mem.as_dict()}
    if evaluate_quality:
        parts = []
        for part in ("val", "test") if ctx.full_quality else ("test",):
            pred = trainer.predict(ctx.hf_dataset(part, pad_to_max))
            # group_by_length reorders predict() output by length: score against the returned label_ids
            parts.append((torch.sigmoid(torch.as_tensor(pred.predictions).float()).numpy(), pred.label_ids))
        out["quality"] = quality(ctx, parts[0] if len(parts) == 2 else None, parts[-1])
    shutil.rmtree(outdir, ignore_errors=True)
    return out


def run_contender(ctx: Context, name: str, evaluate_quality: bool) -> dict:
    with quiet():
        if name == "mtlv":
            out = run_mtlv(ctx, evaluate_quality)
        elif name == "plain":
            out = run_plain(ctx, evaluate_quality)
        else:
            out = run_hf(ctx, name == "hf_max_length", evaluate_quality)
    counts = out.pop("counts", None) or ctx.step_counts
    if out["steps"] != ctx.total_steps:
        raise RuntimeError(f"{name} ran {out['steps']} optimizer steps, expected {ctx.total_steps}")
    steady = counts[ctx.warmup: ctx.total_steps]
    n, real, padded = (sum(c[i] for c in steady) for i in range(3))
    n_all, real_all = sum(c[0] for c in counts), sum(c[1] for c in counts)
    out.update({
        "samples_per_s": n / out["steady_s"], "real_tokens_per_s": real / out["steady_s"],
        "padded_tokens_per_s": padded / out["steady_s"], "pad_waste": 1 - real / padded,
        "fit_samples_per_s": n_all / out["total_s"], "fit_real_tokens_per_s": real_all / out["total_s"],
        "samples_per_cpu_s": n / out["steady_cpu_s"] if out["steady_cpu_s"] > 0 and not ctx.gpu else None,
        "steady_samples": n, "steady_real_tokens": real, "steady_padded_tokens": padded,
    })
    if ctx.gpu:
        peak = ctx.peak_flops
        out["mfu_real_tokens"] = 6 * ctx.n_params * out["real_tokens_per_s"] / peak if peak else None
        out["mfu_padded_tokens"] = 6 * ctx.n_params * out["padded_tokens_per_s"] / peak if peak else None
    gc.collect()
    if ctx.gpu:
        torch.cuda.empty_cache()
    return out


# ----------------------------------------------------------------------------- sections
def bench_data(ctx: Context, repeats: int) -> dict:
    """Tokenization throughput cold (fresh tokenizer, empty cache), cache load time, padding waste."""
    from transformers import AutoTokenizer

    from mtlv.data.sampler import LengthGroupedSampler
    from mtlv.data.tokenize import tokenize, tokenize_cached
    from mtlv.models.encoder import resolve_name

    texts, n = ctx.corpus.texts, len(ctx.corpus)
    cold, cached_cold, warm = [], [], []
    for _ in range(max(1, repeats)):
        tok = AutoTokenizer.from_pretrained(resolve_name(ctx.cfg.model.name_or_path), use_fast=True)
        t = time.perf_counter()
        tokenize(texts, tok, ctx.max_length)
        cold.append(time.perf_counter() - t)
        cache = Path(tempfile.mkdtemp(prefix="tokcache-", dir=ctx.workdir))
        t = time.perf_counter()
        tokenize_cached(texts, tok, ctx.max_length, cache)
        cached_cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        hit = tokenize_cached(texts, tok, ctx.max_length, cache)
        warm.append(time.perf_counter() - t)
        assert hit.from_cache
        shutil.rmtree(cache, ignore_errors=True)

    # An STL sweep over every label: every job asks the cache; the tokenizer runs once.
    calls = {"n": 0}

    class Counting:
        def __init__(self, inner):
            self.inner, self.init_kwargs, self.name_or_path = inner, inner.init_kwargs, inner.name_or_path

        def __len__(self):
            return len(self.inner)

        def __call__(self, *a, **k):
            calls["n"] += 1
            return self.inner(*a, **k)

    cache = Path(tempfile.mkdtemp(prefix="tokcache-", dir=ctx.workdir))
    counting = Counting(tok)
    batches_per_run = math.ceil(n / 1024)
    for _ in range(ctx.num_labels):
        tokenize_cached(texts, counting, ctx.max_length, cache)
    shutil.rmtree(cache, ignore_errors=True)

    # Padding waste on the training split, per batching scheme (the same lengths for all).
    lengths = ctx.tokens.lengths[ctx.split.train]
    bs = ctx.batch_size

    def waste(order) -> float:
        real = padded = 0
        for s in range(0, len(order), bs):
            chunk = lengths[order[s:s + bs]]
            real, padded = real + chunk.sum(), padded + len(chunk) * chunk.max()
        return float(1 - real / padded)

    rng = np.random.default_rng(0)
    random_waste = statistics.mean(waste(rng.permutation(len(lengths))) for _ in range(5))
    grouped = statistics.mean(
        waste(np.fromiter(iter(_with_epoch(LengthGroupedSampler(lengths, bs, seed=ctx.args.seed), e)), dtype=np.int64))
        for e in range(5))
    all_lengths = ctx.tokens.lengths
    return {
        "docs": n, "max_length": ctx.max_length,
        "tokenize_cold_s": summarize(cold), "tokenize_docs_per_s": n / statistics.median(cold),
        "cache_cold_s": summarize(cached_cold), "cache_load_s": summarize(warm),
        "cache_load_docs_per_s": n / statistics.median(warm),
        "sweep_jobs": ctx.num_labels, "sweep_tokenizer_calls": calls["n"],
        "sweep_tokenizations": calls["n"] / batches_per_run,
        "tokens_median": float(np.median(all_lengths)), "tokens_mean": float(all_lengths.mean()),
        "truncated_share": float((all_lengths >= ctx.max_length).mean()),
        "pad_waste": {"pad_to_max_length": float(1 - lengths.sum() / (len(lengths) * ctx.max_length)),
                      "dynamic_random_batches": random_waste, "dynamic_length_grouped": grouped},
    }


def _with_epoch(sampler, epoch):
    sampler.set_epoch(epoch)
    return sampler


def bench_training(ctx: Context, names: list[str], repeats: int, with_quality: bool,
                   deadline: float | None = None) -> dict:
    from transformers import AutoModel  # noqa: F401  (import cost outside the timings)

    ctx.step_counts = ctx.mtlv_step_counts()
    with quiet():
        encoder = ctx.encoder()
    ctx.n_params = sum(p.numel() for n, p in encoder.named_parameters() if "embeddings" not in n)
    ctx.n_params_total = sum(p.numel() for p in encoder.parameters())
    del encoder
    ctx.peak_flops = None
    if ctx.gpu:
        name = torch.cuda.get_device_name()
        tflops = ctx.args.peak_tflops or next((t for key, t in PEAK_BF16_TFLOPS if key in name), None)
        ctx.peak_flops = tflops * 1e12 if tflops else None
    # One untimed warm-up run of each contender's code path would double the time; instead the
    # first `warmup` steps of every run are left out of the steady-state numbers.
    runs: dict[str, list[dict]] = {n: [] for n in names}
    repeat_s: list[float] = []
    for r in range(repeats):
        if deadline and repeat_s and time.perf_counter() + statistics.mean(repeat_s) > deadline:
            print(f"  time budget: stopping after {r} repeat(s) (--budget-s)", flush=True)
            break
        began = time.perf_counter()
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t = time.perf_counter()
            res = run_contender(ctx, name, evaluate_quality=with_quality and r == 0)
            res["repeat"], res["position"] = r, order.index(name)
            runs[name].append(res)
            q = res.get("quality", {})
            print(f"  repeat {r + 1}/{repeats} {name:>19}: {res['samples_per_s']:7.2f} samples/s "
                  f"{res['real_tokens_per_s']:8.0f} real tok/s  fit {res['total_s']:6.1f} s  "
                  f"peak RSS {res['peak_rss_mb']:.0f} MB"
                  + (f"  test F1-macro@0.5 {q['test_f1_macro_at_0.5']:.3f}" if q else "")
                  + f"  ({time.perf_counter() - t:.0f} s)", flush=True)
        repeat_s.append(time.perf_counter() - began)

    keys = ("samples_per_s", "real_tokens_per_s", "padded_tokens_per_s", "fit_samples_per_s", "samples_per_cpu_s", "total_s",
            "steady_s", "peak_rss_mb", "rss_growth_mb", "peak_gpu_mb", "mfu_real_tokens", "mfu_padded_tokens")
    contenders = {}
    for name, rs in runs.items():
        contenders[name] = {"description": CONTENDERS[name], "runs": rs,
                            **{k: summarize([x.get(k) for x in rs]) for k in keys if any(k in x for x in rs)},
                            "pad_waste": rs[0]["pad_waste"], "quality": rs[0].get("quality")}

    ratios = {}
    for other in [n for n in names if n != "mtlv"]:
        if "mtlv" not in runs:
            break
        key = f"mtlv_vs_{other}"
        ratios[key] = {}
        for metric in ("samples_per_s", "real_tokens_per_s", "fit_samples_per_s", "samples_per_cpu_s"):
            per = [a[metric] / b[metric] for a, b in zip(runs["mtlv"], runs[other]) if a.get(metric) and b.get(metric)]
            ratios[key][metric] = {**summarize(per), "per_repeat": per}
        if key in GOALS:
            measured = ratios[key]["samples_per_s"]["median"]
            ratios[key]["goal"] = GOALS[key]
            ratios[key]["goal_met"] = measured >= GOALS[key]
            ratios[key]["goal_met_real_tokens"] = ratios[key]["real_tokens_per_s"]["median"] >= GOALS[key]
            cpu = ratios[key]["samples_per_cpu_s"]["median"]
            ratios[key]["goal_met_cpu_time"] = None if cpu is None else cpu >= GOALS[key]
        qa, qb = contenders["mtlv"]["quality"], contenders[other]["quality"]
        if qa and qb:
            ratios[key]["test_f1_macro_at_0.5_diff"] = qa["test_f1_macro_at_0.5"] - qb["test_f1_macro_at_0.5"]
    return {"total_steps": ctx.total_steps, "warmup_steps": ctx.warmup, "epochs_touched": ctx.epochs,
            "repeats_done": len(repeat_s),
            "steps_per_epoch": ctx.steps_per_epoch, "batch_size": ctx.batch_size, "max_length": ctx.max_length,
            "params_non_embedding": ctx.n_params, "params_total": ctx.n_params_total,
            "peak_flops": ctx.peak_flops, "contenders": contenders, "ratios": ratios}


def bench_e2e(args: argparse.Namespace, workdir: Path, out_dir: Path) -> dict:
    """`python -m mtlv.train arch=...` as a user runs it (MLflow on), each in a fresh output folder."""
    archs = ["stl", "gmtl", "mtl"]
    data = ["dataset=demo"] if args.data == "demo" else [
        "dataset=openi", f"dataset.source.path={args.data}", "dataset.source.download=false"]
    common = [*data, *([f"dataset.limit={args.e2e_limit}"] if args.e2e_limit else []), f"model={args.e2e_model}",
              f"trainer.max_epochs={args.e2e_epochs}", f"seed={args.seed}",
              f"data.batch_size={args.batch_size}", "trainer=gpu" if args.gpu else "trainer=cpu",
              *([f"torch_threads={args.threads}"] if args.threads else []), *[a for a in args.e2e_args.split() if a]]
    logs = out_dir / "e2e_logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runs = {a: [] for a in archs}
    for r in range(max(1, args.e2e_repeats)):
        order = archs[r % 3:] + archs[: r % 3]
        for arch in order:
            folder = workdir / f"e2e-{arch}-{r}"
            shutil.rmtree(folder, ignore_errors=True)
            extra = [f"clustering.k={args.e2e_k}"] if arch == "gmtl" else []
            cmd = [sys.executable, "-m", "mtlv.train", f"arch={arch}", *common, *extra, f"paths.output_dir={folder}"]
            log_path = logs / f"{arch}-{r}.log"
            t = time.perf_counter()
            with open(log_path, "w") as fh:
                proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
            wall = time.perf_counter() - t
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log_path}")
            text = log_path.read_text(errors="replace")
            summary = {"wall_s": wall, "command": " ".join(cmd[1:]), "log": str(log_path),
                       "tokenizations": text.count("tokenized "),
                       "token_cache_files": len(list((folder / "cache" / "tokens").glob("*.npz")))}
            agg = list((folder / "runs").glob("*/*/aggregate.json"))
            if agg:
                a = json.loads(agg[0].read_text())
                summary.update(num_jobs=a["num_jobs"], sum_job_s=a["sum_job_s"], test_f1_macro=a["test"]["f1_macro"])
            else:
                res = json.loads(next((folder / "runs").glob("*/*/model/result.json")).read_text())
                summary.update(num_jobs=1, sum_job_s=res["elapsed_s"], test_f1_macro=res["test"]["f1_macro"])
            runs[arch].append(summary)
            print(f"  e2e {arch:>4}: {wall:6.1f} s wall, {summary['num_jobs']} job(s), "
                  f"test F1-macro {summary['test_f1_macro']:.3f}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    out = {"settings": {"model": args.e2e_model, "limit": args.e2e_limit, "epochs": args.e2e_epochs,
                        "gmtl_k": args.e2e_k, "logger": "mlflow (default)", "launcher": "basic (sequential)"},
           "archs": {a: {"wall_s": summarize([x["wall_s"] for x in rs]), "runs": rs} for a, rs in runs.items()}}
    per = [s["wall_s"] / g["wall_s"] for s, g in zip(runs["stl"], runs["gmtl"])]
    out["stl_over_gmtl"] = {**summarize(per), "per_repeat": per}
    per = [s["wall_s"] / m["wall_s"] for s, m in zip(runs["stl"], runs["mtl"])]
    out["stl_over_mtl"] = {**summarize(per), "per_repeat": per}
    return out


# ----------------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    m = result["meta"]
    lines = [f"# MTLV benchmark ({m['date']})", "",
             f"- device: {m['device']}; torch {m['torch']}, transformers {m['transformers']}, "
             f"lightning {m['lightning']}; {m['torch_threads']} torch threads",
             f"- data: {m['data']} ({m['docs']} documents, {m['labels']} labels; train/val/test "
             f"{m['split']['train']}/{m['split']['val']}/{m['split']['test']})",
             f"- model: {m['model']}, batch size {m['batch_size']}, max_length {m['max_length']}, "
             f"precision {m['precision']}, seed {m['seed']}",
             f"- command: `{m['command']}` ({m['wall_s']:.0f} s); load average at start / end: "
             f"{fmt_load(m.get('load_average_start'))} / {fmt_load(m.get('load_average_end'))}", ""]
    tr = result.get("training")
    if tr:
        lines += [f"## Training throughput ({tr['total_steps']} optimizer steps per run, the first "
                  f"{tr['warmup_steps']} left out of the steady-state timing; {tr['repeats_done']} alternating repeats)", "",
                  "| contender | samples/s median (min-max) | real tokens/s | samples per CPU-s | pad waste | "
                  "fit wall-clock (s) | peak RSS (MB) |"
                  + (" peak GPU (MB) | MFU |" if m["gpu"] else "") + " test F1-macro @0.5 | @val threshold |",
                  "|---|---|---|---|---|---|---|" + ("---|---|" if m["gpu"] else "") + "---|---|"]
        for name, c in tr["contenders"].items():
            q = c.get("quality") or {}
            row = (f"| {name} | {fmt(c['samples_per_s']['median'])} ({fmt(c['samples_per_s']['min'])}"
                   f"-{fmt(c['samples_per_s']['max'])}) | {fmt(c['real_tokens_per_s']['median'], 0)} | "
                   f"{fmt((c.get('samples_per_cpu_s') or {}).get('median'))} | "
                   f"{c['pad_waste'] * 100:.0f}% | {fmt(c['total_s']['median'], 1)} | {fmt(c['peak_rss_mb']['median'], 0)} |")
            if m["gpu"]:
                row += f" {fmt(c['peak_gpu_mb']['median'], 0)} | {fmt((c.get('mfu_real_tokens') or {}).get('median'), 3)} |"
            row += f" {fmt(q.get('test_f1_macro_at_0.5'), 3)} | {fmt(q.get('test_f1_macro'), 3)} |"
            lines.append(row)
        lines += ["", "| ratio (MTLV / other, same repeat) | samples/s median (min-max) | real tokens/s | "
                  "samples per CPU-s | fit wall-clock samples/s | goal | test F1-macro@0.5 diff |",
                  "|---|---|---|---|---|---|---|"]
        for key, r in tr["ratios"].items():
            s, t, f, c = r["samples_per_s"], r["real_tokens_per_s"], r["fit_samples_per_s"], r["samples_per_cpu_s"]
            goal = ""
            if "goal" in r:
                ok = lambda met: "met" if met else "NOT met"  # noqa: E731
                goal = f">= {r['goal']}: samples/s {ok(r['goal_met'])}, tokens/s {ok(r['goal_met_real_tokens'])}"
                if r.get("goal_met_cpu_time") is not None:
                    goal += f", per CPU-s {ok(r['goal_met_cpu_time'])}"
            lines.append(f"| {key} | {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f}) | {t['median']:.2f} | "
                         f"{fmt(c['median'])} | {f['median']:.2f} | {goal} | "
                         f"{fmt(r.get('test_f1_macro_at_0.5_diff'), 3)} |")
        lines += ["", "Contenders:"] + [f"- **{n}**: {c['description']}" for n, c in tr["contenders"].items()] + [""]
    d = result.get("data")
    if d:
        pw = d["pad_waste"]
        lines += ["## Data pipeline", "",
                  "| measure | value |", "|---|---|",
                  f"| tokenization, cold (fast tokenizer, {d['docs']} docs) | {d['tokenize_docs_per_s']:.0f} docs/s "
                  f"({d['tokenize_cold_s']['median']:.2f} s) |",
                  f"| tokenize + write cache | {d['cache_cold_s']['median']:.2f} s |",
                  f"| load from cache | {d['cache_load_s']['median'] * 1000:.1f} ms ({d['cache_load_docs_per_s']:.0f} docs/s) |",
                  f"| STL sweep of {d['sweep_jobs']} jobs: tokenizations | {d['sweep_tokenizations']:.0f} |",
                  f"| tokens per document, median / mean | {d['tokens_median']:.0f} / {d['tokens_mean']:.1f} "
                  f"({d['truncated_share'] * 100:.1f}% truncated at {d['max_length']}) |",
                  f"| padding waste: pad to max_length | {pw['pad_to_max_length'] * 100:.1f}% |",
                  f"| padding waste: dynamic, random batches | {pw['dynamic_random_batches'] * 100:.1f}% |",
                  f"| padding waste: dynamic, length-grouped (MTLV) | {pw['dynamic_length_grouped'] * 100:.1f}% |", ""]
    e = result.get("e2e")
    if e and "skipped" in e:
        lines += ["## End to end", "", f"Skipped: {e['skipped']}.", ""]
    elif e:
        s = e["settings"]
        lines += [f"## End to end (`python -m mtlv.train`, model={s['model']}, {s['limit']} documents, "
                  f"{s['epochs']} epoch(s), MLflow on, sequential jobs)", "",
                  "| arch | jobs | wall-clock (s) | summed job time (s) | test F1-macro | tokenizations |",
                  "|---|---|---|---|---|---|"]
        for arch, a in e["archs"].items():
            r0 = a["runs"][0]
            lines.append(f"| {arch} | {r0['num_jobs']} | {a['wall_s']['median']:.1f} | {r0['sum_job_s']:.1f} | "
                         f"{r0['test_f1_macro']:.3f} | {r0['tokenizations']} |")
        lines += ["", f"STL / GMTL (k={s['gmtl_k']}) wall-clock: {e['stl_over_gmtl']['median']:.2f}x; "
                  f"STL / MTL: {e['stl_over_mtl']['median']:.2f}x", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import lightning  # noqa: F401  (it sets its loggers' levels on import: quieten them after)
    import transformers

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "mtlv", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    began = time.perf_counter()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mtlv-bench-"))
    if args.gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        print(f"MTLV benchmark -> {out_dir}", flush=True)
        ctx = Context(args, workdir)
        device = torch.cuda.get_device_name() if args.gpu else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
        result: dict = {"meta": {
            "date": time.strftime("%Y-%m-%d %H:%M"), "command": "python scripts/bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "device": device, "gpu": bool(args.gpu), "torch": torch.__version__, "transformers": transformers.__version__,
            "lightning": lightning.__version__, "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
            "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "cpu_count": os.cpu_count(), "data": args.data, "docs": len(ctx.corpus), "labels": ctx.num_labels,
            "split": ctx.split.sizes(), "model": args.model, "batch_size": ctx.batch_size, "max_length": ctx.max_length,
            "precision": "bf16-mixed, TF32, fused AdamW" if args.gpu else "fp32", "seed": args.seed,
            "repeats": args.repeats, "steps": ctx.total_steps, "epochs": args.epochs, "overrides": ctx.overrides,
            "mtlv_included": "Trainer construction, datamodule setup (token cache load), fit loop with the default "
                             "callbacks (ModelCheckpoint save_last writing last.ckpt at the end; TQDM progress bar, "
                             "refresh 10), MultiTaskModule.training_step logging; excluded: MLflow (logger=False) "
                             "and validation (limit_val_batches=0, as no contender validates)",
        }}
        if not args.skip_data:
            print("data pipeline ...", flush=True)
            result["data"] = bench_data(ctx, args.repeats)
            d = result["data"]
            print(f"  tokenize {d['tokenize_docs_per_s']:.0f} docs/s cold; cache load "
                  f"{d['cache_load_s']['median'] * 1000:.1f} ms; STL sweep tokenizations {d['sweep_tokenizations']:.0f}",
                  flush=True)
        budget = args.budget_s or None
        if not args.skip_training:
            names = [n for n in CONTENDERS if n in args.contenders.split(",")]
            print(f"training: {', '.join(names)}; {ctx.total_steps} steps x {args.repeats} repeats ...", flush=True)
            deadline = began + budget * (0.75 if not args.skip_e2e else 1.0) if budget else None
            result["training"] = bench_training(ctx, names, args.repeats, not args.no_quality, deadline)
        if not args.skip_e2e:
            left = began + budget - time.perf_counter() if budget else None
            if left is not None and left < 0.2 * budget:
                print(f"end to end: skipped, {left:.0f} s of the --budget-s {budget:.0f} left", flush=True)
                result["e2e"] = {"skipped": f"time budget (--budget-s {budget:.0f}) spent"}
            else:
                print("end to end: stl, gmtl, mtl ...", flush=True)
                result["e2e"] = bench_e2e(args, workdir, out_dir)
        result["meta"]["wall_s"] = time.perf_counter() - began
        result["meta"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        from mtlv.io import write_json, write_text

        write_json(out_dir / "bench.json", result)
        text = markdown(result)
        write_text(out_dir / "bench.md", text + "\n")
        print("\n" + text, flush=True)
        print(f"wrote {out_dir / 'bench.json'} and {out_dir / 'bench.md'}", flush=True)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
