#!/usr/bin/env bash
# The "beyond the thesis" grid (docs/grouping.md) on one GPU machine, at a stated budget:
# Open-I, all reports, 4 folds, one seed, the packaged MiniLM, MTL + GMHL + GMTL over every task feature
# (label name, description, co-occurrence, gradient affinity) x clusterer (k-medoids, agglomerative) x
# k (3, 4, 5, auto), GMHL with each loss weighting, and STL, all as `make reproduce-tables` sweeps
# (scripts/reproduce_tables.py --grid beyond), N_JOBS jobs at a time on the one GPU (joblib launcher).
# Jobs run with logger=none (the GPU machine may lack MLflow); every result is in the runs folder, which
# is packed at the end into $OUT (no weights, no plots) so that, on the machine with the MLflow store:
#     mkdir -p outputs && cat runs.tar.xz.* | tar xJf - -C outputs   # -> outputs/runs/openi/...
#     python -m mtlv.track outputs/runs            # log the results into the store
#     python scripts/reproduce_tables.py --scale minilm --datasets openi --families baseline  # CPU baselines
#     python -m mtlv.report                        # tables, incl. the beyond-the-thesis table
#
# Usage, from the project root:  ../shared/gpu-kit/prepare.sh && scripts/gpu_kit_extras.sh  (where the kit
# lives; the second adds wheels the kit lacks), then on the GPU machine:  scripts/gpu_beyond.sh  (sources
# .gpu-kit/setup.sh when present).
# Resume: the machine is lent for minutes, and the runs folder goes with it. Copy the parts a previous call
# returned into .gpu-kit/resume/ (carried with the kit; or set RESUME to their folder): they are unpacked into
# WORK first, so every finished job and grouping is kept and only the rest trains (each job's resume key
# includes dataset.path and model.name_or_path: run from the same checkout path with the same kit).
# Knobs: EPOCHS (2), BATCH (32), N_JOBS (14), SEEDS (42), LIMIT_S (520: the grid stops there; what finished
# is kept and packed, and a rerun resumes the rest), OUT (outputs/gpu_beyond: logs and the packed parts),
# WORK (/tmp/mtlv_gpu_beyond: the runs, caches and sweep logs, removed after packing), PYTHON (python3).
# GPU_CHECK_DRY=1: CPU, tiny model, 80 Open-I reports, 2 folds, k=3 only, 2 jobs at a time: checks the
# script and the packing, not the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-outputs/gpu_beyond}
EPOCHS=${EPOCHS:-2}
BATCH=${BATCH:-32}
N_JOBS=${N_JOBS:-14}
SEEDS=${SEEDS:-42}
LIMIT_S=${LIMIT_S:-520}
DRY=${GPU_CHECK_DRY:-0}
[[ "$DRY" == 1 ]] && N_JOBS=2
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-/tmp/mtlv_gpu_beyond}
rm -rf "$WORK" && mkdir -p "$WORK"
RESUME=${RESUME:-.gpu-kit/resume}
unpack() { if command -v xz >/dev/null; then xz -dc; else $PY -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)"; fi; }
if compgen -G "$RESUME/runs.tar.xz.*" >/dev/null; then
    cat "$RESUME"/runs.tar.xz.* | unpack | tar xf - -C "$WORK" \
        && RESUMED=1 && echo "resumed: $(find "$WORK/runs" -name result.json | wc -l) finished jobs from $RESUME"
fi
export MTLV_OUTPUT_DIR="$WORK" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    PYTHONUNBUFFERED=1

# The budget, fixed before the run and never tuned on test: the smoke scale's learning rates (tuned on the
# demo data), mean pooling (MiniLM's own), constant schedule, batch 32, 128 tokens, threshold on validation.
BUDGET=(logger=none "trainer.max_epochs=$EPOCHS" "data.batch_size=$BATCH" model.module.lr=5e-5
        model.module.head_lr=3e-2 model.module.pooling=mean model.module.schedule=constant
        model.module.warmup_ratio=0.0 data.test_curve=false callbacks.model_checkpoint=null
        eval.save_weights=false torch_threads=1 hydra/launcher=parallel "hydra.launcher.n_jobs=$N_JOBS")
if [[ "$DRY" == 1 ]]; then
    DATA=(--datasets openi --overrides "${BUDGET[@]}" model=tiny trainer=cpu trainer.max_epochs=1
          "dataset.path=${OPENI_CSV:-../shared/data/openi/indiana_reports.csv}" dataset.source.download=false
          dataset.limit=80 split.folds=2 clustering.k=3 "model.name_or_path=${MINILM:-packaged:minilm}")
else
    source scripts/gpu_env.sh
    DATA=(--datasets openi --overrides "${BUDGET[@]}" trainer=gpu "dataset.path=$CSV"
          dataset.source.download=false "model.name_or_path=$ENCODER")
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/steps.txt"
fi

start=$(date +%s)
left() { echo $(( LIMIT_S - ($(date +%s) - start) )); }
grid() {  # grid NAME FAMILIES: one reproduce_tables call, stopped at the time limit (a rerun resumes it)
    local name=$1 families=$2 t0; t0=$(date +%s)
    if (( $(left) < 20 )); then echo "== $name: skipped, the time limit is reached"; echo "$name skipped 0" >> "$OUT/steps.txt"; return; fi
    echo "== $name ($(left) s left)"
    timeout --signal=TERM --kill-after=10 "$(left)" $PY scripts/reproduce_tables.py --scale minilm --grid beyond \
        --seeds "$SEEDS" --families "$families" --no-report "${DATA[@]}" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name $rc $(( $(date +%s) - t0 ))" >> "$OUT/steps.txt"
    grep -E "^\[reproduce\]|sweep: [0-9]+ jobs|jobs failed|^error" "$OUT/$name.log" | tail -20
    [[ $rc == 0 ]] || { echo "   $name: exit $rc (124: stopped at the time limit); tail of its log:"; tail -12 "$OUT/$name.log"; }
}
# The GPU tests beside the grid (they take a small share of the GPU), when pytest is there.
if [[ "$DRY" != 1 ]] && $PY -c "import pytest" 2>/dev/null; then
    (MTLV_OUTPUT_DIR="$WORK/gpu_tests" timeout 300 $PY -m pytest -m gpu -q -rs -p no:cacheprovider --continue-on-collection-errors tests \
        > "$OUT/gpu_tests.log" 2>&1; echo "gpu_tests exit $?" >> "$OUT/gpu_tests.log") &
fi
# MTL and GMHL (every grouping, then the weightings), GMTL, then STL, whose singletons are mostly models the
# GMTL cells trained already (reuse_models). The baselines need no GPU: run them where the store is.
# A resumed run does what is missing first (the sweeper keeps finished jobs without launching them, so
# a finished step costs only its preparation): after session 3's run that is GMTL and STL.
if [[ -n "${RESUMED:-}" ]]; then
    grid gmtl gmtl
    grid stl stl
    grid heads mtl,gmhl
else
    grid heads mtl,gmhl
    grid gmtl gmtl
    grid stl stl
fi
wait
[[ -f "$OUT/gpu_tests.log" ]] && { echo "== GPU tests"; grep -E "passed|failed|error|SKIPPED|FAILED|exit" "$OUT/gpu_tests.log" | tail -15; }

# Pack the results: every job's and cell's files except weights, checkpoints and plots (the importer
# and the report need the predictions, metrics, configs and groupings). A reused job's predictions are
# the same bytes as its source's: hard-linked first, so the archive holds them once. Parts under 15 MiB;
# the logs in one archive beside them (the device tool returns at most 8 files).
$PY - "$WORK/runs" <<'PY'
import hashlib, os, sys
seen, linked = {}, 0
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        if name.endswith(".csv") and os.path.getsize(path) > 4096:
            digest = hashlib.sha1(open(path, "rb").read()).hexdigest()
            if digest in seen:
                os.unlink(path); os.link(seen[digest], path); linked += 1
            else:
                seen[digest] = path
print(f"packing: {linked} duplicate prediction files stored once")
PY
pack() { if command -v xz >/dev/null; then xz -6 -T0; else $PY -c "import lzma, shutil, sys; shutil.copyfileobj(sys.stdin.buffer, lzma.open(sys.stdout.buffer, 'w', preset=6))"; fi; }
(cd "$WORK" && tar cf - --exclude='*.png' --exclude='checkpoints' --exclude='export' runs | pack \
    | split -b 15M -d - "$OUT/runs.tar.xz.")
(cd "$OUT" && tar cf - ./*.log | pack > logs.tar.xz && rm -f ./*.log)
ls -la "$OUT"
find "$WORK/runs" -name result.json | wc -l | xargs echo "job results:"
find "$WORK/runs" -name aggregate.json | wc -l | xargs echo "aggregated STL/GMTL cells:"
find "$WORK/runs" -name result.json -exec grep -l reused_from {} + 2>/dev/null | wc -l | xargs echo "reused jobs:"
[[ "${KEEP_WORK:-0}" == 1 ]] || rm -rf "$WORK"
exit 0
