#!/usr/bin/env python
"""MTLV's performance benchmark: one process, same data, model, batch size, optimizer steps and seed
for every contender; contenders alternate (A B C D, B C D A, ...) over the repeats and the report
gives medians, spreads and ratios measured within each repeat (robust to a noisy, shared machine).

Sections
  data      tokenization throughput cold, cache write and load, padding waste per batching scheme
  training  MTLV (Lightning Trainer + MultiTaskModule + MultiLabelDataModule, as `mtlv/run/job.py`
            builds them) vs a plain PyTorch loop on the same batches (MTLV's overhead), vs the
            Hugging Face Trainer + AutoModelForSequenceClassification (a) padding to max_length,
            (b) dynamic padding + group_by_length; samples/s, real (non-pad) tokens/s, peak memory,
            test F1-macro (threshold 0.5 and MTLV's validation-chosen threshold) for every contender
  e2e       `python -m mtlv.train arch=stl|gmtl|mtl` as subprocesses (the real user path)

Usage: python scripts/bench.py [--steps N | --epochs E] [--repeats R] [--batch-size B]
       [--max-length L] [--data PATH|demo] [--model minilm|tiny] [--out DIR] [--skip-e2e] [--gpu]
       [--threads T] [--budget-s S] [--contenders a,b] [--overrides "k=v ..."]   (--help: all flags)
The sections live in scripts/benchlib/ (common, context, contenders, sections, report).
Writes DIR/bench.json and DIR/bench.md (default DIR: outputs/bench). docs/performance.md explains
the method and shows a measured run.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if str(Path(__file__).resolve().parent) not in sys.path:  # benchlib/ beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from benchlib.common import CONTENDERS, ROOT, default_data  # noqa: E402
from benchlib.context import Context  # noqa: E402
from benchlib.sections import bench_data, bench_e2e, bench_training  # noqa: E402
from benchlib.report import markdown  # noqa: E402


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

