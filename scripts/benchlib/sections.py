"""The benchmark's sections: data pipeline, training throughput, end-to-end cells."""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchlib.common import CONTENDERS, GOALS, GPU_GOALS, PEAK_BF16_TFLOPS, ROOT, log, quiet, summarize
from benchlib.context import Context, quality
from benchlib.contenders import run_contender

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
        goals = GPU_GOALS if ctx.gpu else GOALS
        if key in goals:
            measured = ratios[key]["samples_per_s"]["median"]
            ratios[key]["goal"] = goals[key]
            ratios[key]["goal_met"] = measured >= goals[key]
            ratios[key]["goal_met_real_tokens"] = ratios[key]["real_tokens_per_s"]["median"] >= goals[key]
            cpu = ratios[key]["samples_per_cpu_s"]["median"]
            ratios[key]["goal_met_cpu_time"] = None if cpu is None else cpu >= goals[key]
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
    from mtlv.layout import CellLayout, JobLayout

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
                a = CellLayout(agg[0].parent).aggregate()
                summary.update(num_jobs=a["num_jobs"], sum_job_s=a["sum_job_s"], test_f1_macro=a["test"]["f1_macro"])
            else:
                res = JobLayout(next((folder / "runs").glob("*/*/model/result.json")).parent).result()
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
