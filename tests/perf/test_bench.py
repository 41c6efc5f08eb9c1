"""scripts/bench.py runs in a tiny configuration and writes its JSON and Markdown report.
Mechanisms only: no timing is asserted."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench.py"


def run_bench(out: Path, *args: str, timeout: int = 600) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(BENCH), "--data", "demo", "--model", "tiny", "--out", str(out),
                           "--budget-s", "0", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "bench.md").exists()
    return json.loads((out / "bench.json").read_text())


def load_bench():
    spec = importlib.util.spec_from_file_location("mtlv_bench_script", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_log_levels():
    """bench.main quietens library loggers for its own output; later tests need them back."""
    import logging

    names = ("lightning", "lightning.pytorch", "lightning.fabric", "mtlv", "transformers", "")
    levels = {n: logging.getLogger(n).level for n in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers


def test_bench_data_section(tmp_path, restore_log_levels):
    """In-process (fast): the data-pipeline section and the report files."""
    bench = load_bench()
    result = bench.main(["--data", "demo", "--model", "tiny", "--out", str(tmp_path), "--skip-training",
                         "--skip-e2e", "--repeats", "1", "--limit", "120"])
    assert json.loads((tmp_path / "bench.json").read_text())["data"] == json.loads(json.dumps(result["data"]))
    assert "## Data pipeline" in (tmp_path / "bench.md").read_text()
    assert set(result) >= {"meta", "data"}
    data = result["data"]
    for key in ("tokenize_docs_per_s", "cache_load_s", "cache_cold_s", "sweep_tokenizations", "pad_waste"):
        assert key in data
    assert data["docs"] == 120
    assert data["sweep_tokenizations"] == 1  # an STL sweep over every label tokenizes once
    waste = data["pad_waste"]
    assert waste["dynamic_length_grouped"] <= waste["dynamic_random_batches"] <= waste["pad_to_max_length"] + 1e-9


@pytest.mark.slow
def test_bench_tiny_training_and_e2e(tmp_path):
    pytest.importorskip("accelerate")  # the HF Trainer contenders need it (pip install -e ".[dev]")
    result = run_bench(tmp_path, "--steps", "2", "--warmup-steps", "1", "--repeats", "1", "--limit", "120",
                       "--e2e-limit", "40", "--e2e-k", "2", "--skip-data")
    training = result["training"]
    assert set(training["contenders"]) == {"plain", "mtlv", "hf_max_length", "hf_group_by_length"}
    for name, c in training["contenders"].items():
        run = c["runs"][0]
        assert run["steps"] == 2
        for key in ("samples_per_s", "real_tokens_per_s", "peak_rss_mb", "total_s", "pad_waste"):
            assert run[key] is not None and run[key] >= 0, (name, key)
        assert 0 <= c["quality"]["test_f1_macro_at_0.5"] <= 1
    assert training["contenders"]["mtlv"]["runs"][0]["checkpoint_written"]
    # pad-to-max_length computes on padding; MTLV's batches barely do
    assert training["contenders"]["hf_max_length"]["pad_waste"] > training["contenders"]["mtlv"]["pad_waste"]
    assert set(training["ratios"]) == {"mtlv_vs_plain", "mtlv_vs_hf_max_length", "mtlv_vs_hf_group_by_length"}
    for ratio in training["ratios"].values():
        assert ratio["samples_per_s"]["median"] > 0 and "goal" in ratio
    e2e = result["e2e"]
    assert set(e2e["archs"]) == {"stl", "gmtl", "mtl"}
    assert e2e["archs"]["stl"]["runs"][0]["num_jobs"] == 8  # one job per demo label
    assert e2e["archs"]["gmtl"]["runs"][0]["num_jobs"] == 2
    assert e2e["archs"]["stl"]["runs"][0]["token_cache_files"] == 1  # the sweep's 8 jobs share one tokenization
    assert e2e["stl_over_gmtl"]["median"] > 0
