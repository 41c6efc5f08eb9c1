"""The contenders: MTLV, a plain PyTorch loop, the Hugging Face Trainer (two settings)."""
from __future__ import annotations

import gc
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchlib.common import Clock, PeakMemory, quiet
from benchlib.context import Context, predict_loader, quality

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
        def part(loader):  # Trainer.predict, as mtlv/run/job.py predicts (rows come back in length order)
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
