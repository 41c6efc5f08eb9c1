#!/usr/bin/env bash
# One-GPU check of MTLV, for a maintainer (under 8 minutes on one H100/H200):
#   1. the tests marked `gpu` (bf16 + fused AdamW + clipping, a short MTL job, in-process cell = sweep)
#   2. `scripts/bench.py --gpu`: MTLV vs a plain bf16 PyTorch loop vs the HF Trainer, MFU
#   3. whole cells on Open-I with MiniLM (batch 16, max length 128, bf16, 10 epochs): MTL, GMTL k=5
#      (parallel launcher, 5 jobs), STL (parallel launcher, 10 jobs), GMTL k=5 in one job (arch.inprocess)
# and prints one summary table (also written to $OUT/summary.md).
#
# Usage, from the project root:
#   ../shared/gpu-kit/prepare.sh            # where the kit lives: copies it and the Open-I CSV into .gpu-kit/
#   scripts/gpu_check.sh                    # on the GPU machine (sources .gpu-kit/setup.sh when present)
#   make gpu-check
# Knobs: EPOCHS (10), STL_JOBS (10), BENCH_STEPS (100), OUT (outputs/gpu_check), PYTHON (python3).
# GPU_CHECK_DRY=1 runs the same steps on CPU with the tiny model, the demo data and 1 epoch: it checks
# the script itself, not the GPU, in a few minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-outputs/gpu_check}
EPOCHS=${EPOCHS:-10}
STL_JOBS=${STL_JOBS:-10}
BENCH_STEPS=${BENCH_STEPS:-100}
DRY=${GPU_CHECK_DRY:-0}
rm -rf "$OUT" && mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ "$DRY" == 1 ]]; then
    EPOCHS=1; STL_JOBS=2
    DATA=(dataset=demo dataset.limit=120)
    MODEL=(model=tiny)
    DEVICE=(trainer=cpu)
    BENCH=(--data demo --model tiny --limit 120 --steps 2 --warmup-steps 1 --repeats 1)
    GMTL_K=2
else
    source scripts/gpu_env.sh
    DATA=(dataset=openi "dataset.path=$CSV" dataset.source.download=false)
    MODEL=(model=minilm "model.name_or_path=$ENCODER")
    # last.ckpt (weights + AdamW state) once per 10 minutes and at the end, not every epoch (docs/performance.md)
    DEVICE=(trainer=gpu callbacks.model_checkpoint.last_every_minutes=10)
    BENCH=(--gpu --data "$CSV" --overrides "model.name_or_path=$ENCODER" --steps "$BENCH_STEPS" --repeats 1)
    GMTL_K=5
fi
COMMON=("${DATA[@]}" "${MODEL[@]}" "${DEVICE[@]}" logger=none trainer.max_epochs="$EPOCHS"
        callbacks.progress_bar=null trainer.enable_progress_bar=false)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
status=0
step() {  # step NAME CMD...: run, time, log to $OUT/NAME.log, remember the wall-clock
    local name=$1; shift
    echo "== $name: $*"
    local t0; t0=$(date +%s%N)
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    local t1; t1=$(date +%s%N)
    echo "$name $rc $(awk "BEGIN {print ($t1 - $t0) / 1e9}")" >> "$OUT/steps.txt"
    [[ $rc == 0 ]] || { echo "   FAILED (exit $rc): tail of $OUT/$name.log"; tail -15 "$OUT/$name.log"; status=1; }
}

if $PY -c "import pytest" 2>/dev/null; then
    step gpu_tests $PY -m pytest -m gpu -q -rs -p no:cacheprovider tests
else
    echo "== gpu_tests: skipped, pytest is not installed (add its wheels to .gpu-kit/whl: pip download --no-deps" \
         "-d .gpu-kit/whl pytest pluggy iniconfig)"; echo "gpu_tests skipped 0" >> "$OUT/steps.txt"
fi
if ! $PY -c "import accelerate" 2>/dev/null; then  # the HF Trainer needs it; the gpu-kit does not bring it
    echo "== note: accelerate is not installed, so bench --gpu compares MTLV with the plain loop only (add its" \
         "wheel: pip download --no-deps -d .gpu-kit/whl accelerate)"
    BENCH+=(--contenders plain,mtlv)
fi
step bench $PY scripts/bench.py "${BENCH[@]}" --skip-data --skip-e2e --budget-s 0 --out "$OUT/bench"
cell() {  # cell NAME ARGS...: one cell in its own output folder
    local name=$1; shift
    step "$name" env MTLV_OUTPUT_DIR="$OUT/$name" $PY -m mtlv.train "${COMMON[@]}" "$@"
}
cell mtl arch=mtl
cell gmtl arch=gmtl clustering.k=$GMTL_K hydra/launcher=parallel hydra.launcher.n_jobs=$GMTL_K torch_threads=1
cell stl arch=stl hydra/launcher=parallel hydra.launcher.n_jobs=$STL_JOBS torch_threads=1
cell gmtl_inprocess arch=gmtl clustering.k=$GMTL_K arch.inprocess=true

{ [[ "$DRY" == 1 ]] && echo "GPU_CHECK_DRY=1: CPU, tiny model, demo data, 1 epoch; checks the script, not the GPU"
  $PY scripts/gpu_check_summary.py "$OUT"; } | tee "$OUT/summary.md"
exit $status
