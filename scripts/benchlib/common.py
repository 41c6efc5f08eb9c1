"""Constants, the measuring helpers (memory, step clock, summaries) and formatting."""
from __future__ import annotations

import contextlib
import gc
import io
import logging
import math
import os
import re
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


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
# On a GPU (--gpu; issue 9): MTLV within 10% of the plain bf16 loop, 1.5x the HF Trainer's best setting.
GPU_GOALS = {"mtlv_vs_plain": 0.9, "mtlv_vs_hf_group_by_length": 1.5}
# Dense bf16 peak FLOP/s by GPU name (substring, first match wins); --peak-tflops overrides.
PEAK_BF16_TFLOPS = [("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("GH200", 989.4), ("B200", 2250.0),
                    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10G", 125.0), ("A10", 125.0),
                    ("RTX 4090", 165.0), ("V100", 125.0), ("T4", 65.0)]




def default_data() -> str:
    data_dir = Path(os.environ.get("MTLV_DATA_DIR", ROOT.parent / "shared" / "data"))
    csv = data_dir / "openi" / "indiana_reports.csv"
    return str(csv) if csv.exists() else "demo"




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

log = logging.getLogger("bench")
