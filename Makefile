# MTLV make targets. `make help` lists them.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# The CPU build by default; on a GPU machine use e.g. TORCH="torch==2.13.0 --index-url <your CUDA wheel index>".
TORCH   ?= torch==2.13.0
OUTPUT  ?= outputs
SCALE   ?= smoke
STUDY   ?= quick
OVERRIDES ?=

.PHONY: help install train test test-ci test-reproduction test-full test-slurm mlflow-ui clean bench study reproduce-tables tables fault-drill gpu-check

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install:  ## create .venv and install MTLV with its test tools (torch first, so pip keeps the CPU build)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e ".[dev]"

train:  ## the main job: MTL with the packaged MiniLM on the demo data (offline, a few minutes on CPU)
	$(BIN)/python -m mtlv.train $(OVERRIDES)

# pytest exits 5 when it collected no test: for a suite that has tests, a broken selection, not a pass.
PYTEST = HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
NO_TESTS = rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests (exit 5); check the -m marker expression and tests/" >&2; fi; exit $$rc

test:  ## the default test suite: every test not marked slow (fast; no network)
	$(PYTEST) -m "not slow" -q; $(NO_TESTS)

test-ci:  ## what CI runs (.ci/run): every test but the smoke reproduction, slow and SLURM tests included
	$(PYTEST) -m "not reproduction" -q --durations=30 --timeout=1800; $(NO_TESTS)

test-reproduction:  ## the smoke reproduction of the study's grid end to end (~30 min; not in CI)
	$(PYTEST) -m reproduction -q; $(NO_TESTS)

test-full:  ## every test, the slow end-to-end ones and the smoke reproduction included
	$(PYTEST) -q; $(NO_TESTS)

test-slurm:  ## the SLURM tests on a throw-away local cluster (needs slurm-wlm and munge; skipped without them)
	$(PYTEST) -m slurm -q; $(NO_TESTS)

mlflow-ui:  ## open the MLflow UI on MTLV's default store (localhost only)
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(abspath $(OUTPUT))/mlflow.db" --host 127.0.0.1 --port 5000

bench:  ## throughput benchmark: MTLV vs a plain PyTorch loop vs the HF Trainer (ratios from one run)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/bench.py $(BENCH_ARGS)

gpu-check:  ## one-GPU check (< 8 min): gpu tests, bench --gpu, MTL/GMTL/STL cells on Open-I + MiniLM (GPU_CHECK_DRY=1: on CPU, tiny)
	PYTHON=$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) scripts/gpu_check.sh

study:  ## a whole study, planned, run and reported (STUDY=quick|groupings|thesis|... OVERRIDES="dataset=csv dataset.path=my.csv ..."; docs/study.md)
	$(BIN)/python -m mtlv.study study=$(STUDY) $(OVERRIDES)

reproduce-tables:  ## the reference study through mtlv.study (SCALE=smoke|smoke-ci|minilm|openi-cpu|paper [GRID=beyond] [FAMILIES=mtl,gmtl,baseline] [SEEDS=42,43,44] [DATASETS=openi] [OVERRIDES="k=v ..."]; docs/reproduce.md)
	$(BIN)/python scripts/reproduce_tables.py --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(GRID),--grid $(GRID)) $(if $(DATASETS),--datasets $(DATASETS)) $(if $(FAMILIES),--families $(FAMILIES)) $(if $(OVERRIDES),--overrides $(OVERRIDES))

tables:  ## render the tables from the MLflow store only ([REPORT_ARGS="out=... select_on=test ..."])
	$(BIN)/python -m mtlv.report $(REPORT_ARGS)

fault-drill:  ## kill/resume a run and a sweep, parallel logging stress; shows nothing is lost
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/fault_drill.py

clean:  ## remove outputs (MLflow store, caches, runs) and Python caches
	rm -rf $(OUTPUT) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
