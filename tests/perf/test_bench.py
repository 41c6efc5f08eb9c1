"""scripts/bench.py runs in a tiny configuration and writes its JSON and Markdown report.
No speed is asserted: the numbers it reports are checked against each other (rates = counts / the
measured times it also reports, ratios = the contenders' rates divided), and are positive and finite."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench.py"


def run_bench(out: Path, *args: str, timeout: int = 1800) -> dict:  # timeout: only a hang
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(BENCH), "--data", "demo", "--model", "tiny", "--out", str(out),
                           "--budget-s", "0", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "bench.md").exists()
    return json.loads((out / "bench.json").read_text())


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def check_summary(summary: dict, values: list[float]) -> None:
    """A summarize() of `values` (median, min, max, n), all positive and finite."""
    assert summary["n"] == len(values) and all(positive(v) for v in values)
    assert summary["min"] == min(values) and summary["max"] == max(values)
    assert summary["min"] <= summary["median"] <= summary["max"]


def load_bench():
    return load_script(BENCH.stem)


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
    assert data["docs"] == 120 and data["max_length"] == 64  # --limit; model=tiny's max_length
    for key in ("tokenize_cold_s", "cache_cold_s", "cache_load_s"):
        assert data[key]["n"] == 1 and positive(data[key]["median"]), key  # --repeats 1
    assert data["tokenize_docs_per_s"] == pytest.approx(data["docs"] / data["tokenize_cold_s"]["median"], rel=1e-12)
    assert data["cache_load_docs_per_s"] == pytest.approx(data["docs"] / data["cache_load_s"]["median"], rel=1e-12)
    assert data["sweep_jobs"] == 8 and data["sweep_tokenizer_calls"] == 1  # 8 demo labels; 120 texts: one call
    assert data["sweep_tokenizations"] == 1  # an STL sweep over every label tokenizes once
    assert 0 < data["tokens_median"] <= data["max_length"] and 0 < data["tokens_mean"] <= data["max_length"]
    assert 0 <= data["truncated_share"] <= 1
    waste = data["pad_waste"]
    assert 0 <= waste["dynamic_length_grouped"] <= waste["dynamic_random_batches"] <= waste["pad_to_max_length"] + 1e-9
    assert waste["pad_to_max_length"] < 1


@pytest.mark.slow
def test_bench_tiny_training_and_e2e(tmp_path):
    pytest.importorskip("accelerate")  # the HF Trainer contenders need it (pip install -e ".[dev]")
    result = run_bench(tmp_path, "--steps", "2", "--warmup-steps", "1", "--repeats", "1", "--limit", "120",
                       "--e2e-limit", "40", "--e2e-k", "2", "--skip-data")
    training = result["training"]
    assert set(training["contenders"]) == {"plain", "mtlv", "hf_max_length", "hf_group_by_length"}
    assert (training["total_steps"], training["warmup_steps"]) == (2, 1)
    batch = training["batch_size"]
    for name, c in training["contenders"].items():
        run = c["runs"][0]
        assert run["steps"] == 2
        # The steady part is step 2 alone: one full batch (the training split has far more than two).
        assert run["steady_samples"] == batch, name
        assert 0 < run["steady_real_tokens"] <= run["steady_padded_tokens"] <= batch * training["max_length"], name
        assert 0 < run["steady_s"] <= run["total_s"], name
        # Rates are the counts over the measured times it reports; waste is what padding adds.
        assert run["samples_per_s"] == pytest.approx(run["steady_samples"] / run["steady_s"], rel=1e-12), name
        assert run["real_tokens_per_s"] == pytest.approx(run["steady_real_tokens"] / run["steady_s"], rel=1e-12)
        assert run["padded_tokens_per_s"] == pytest.approx(run["steady_padded_tokens"] / run["steady_s"], rel=1e-12)
        assert run["pad_waste"] == pytest.approx(1 - run["steady_real_tokens"] / run["steady_padded_tokens"], rel=1e-12)
        assert positive(run["peak_rss_mb"]) and positive(run["fit_samples_per_s"]), name
        check_summary(c["samples_per_s"], [run["samples_per_s"]])
        assert 0 <= c["quality"]["test_f1_macro_at_0.5"] <= 1
    # Padded to max_length, every steady token slot is there: batch x max_length.
    assert training["contenders"]["hf_max_length"]["runs"][0]["steady_padded_tokens"] == batch * training["max_length"]
    assert training["contenders"]["mtlv"]["runs"][0]["checkpoint_written"]
    # pad-to-max_length computes on padding; MTLV's batches barely do
    assert training["contenders"]["hf_max_length"]["pad_waste"] > training["contenders"]["mtlv"]["pad_waste"]
    assert set(training["ratios"]) == {"mtlv_vs_plain", "mtlv_vs_hf_max_length", "mtlv_vs_hf_group_by_length"}
    runs = {name: c["runs"][0] for name, c in training["contenders"].items()}
    for other in ("plain", "hf_max_length", "hf_group_by_length"):
        ratio = training["ratios"][f"mtlv_vs_{other}"]
        for metric in ("samples_per_s", "real_tokens_per_s"):
            expected = runs["mtlv"][metric] / runs[other][metric]
            assert ratio[metric]["per_repeat"] == [pytest.approx(expected, rel=1e-12)], (other, metric)
            assert ratio[metric]["median"] == pytest.approx(expected, rel=1e-12)
        assert ratio["goal_met"] == (ratio["samples_per_s"]["median"] >= ratio["goal"])
    e2e = result["e2e"]
    assert set(e2e["archs"]) == {"stl", "gmtl", "mtl"}
    walls = {arch: e2e["archs"][arch]["runs"][0]["wall_s"] for arch in e2e["archs"]}
    for arch, wall in walls.items():
        check_summary(e2e["archs"][arch]["wall_s"], [wall])
        run = e2e["archs"][arch]["runs"][0]
        assert 0 < run["sum_job_s"] < wall and 0 <= run["test_f1_macro"] <= 1, arch  # jobs run inside the command
    assert e2e["stl_over_gmtl"]["per_repeat"] == [pytest.approx(walls["stl"] / walls["gmtl"], rel=1e-12)]
    assert e2e["stl_over_mtl"]["per_repeat"] == [pytest.approx(walls["stl"] / walls["mtl"], rel=1e-12)]
    assert e2e["archs"]["stl"]["runs"][0]["num_jobs"] == 8  # one job per demo label
    assert e2e["archs"]["gmtl"]["runs"][0]["num_jobs"] == 2
    assert e2e["archs"]["stl"]["runs"][0]["token_cache_files"] == 1  # the sweep's 8 jobs share one tokenization
    assert e2e["stl_over_gmtl"]["median"] == pytest.approx(walls["stl"] / walls["gmtl"], rel=1e-12)
