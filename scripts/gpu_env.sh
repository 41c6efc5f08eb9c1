# Sourced by the one-GPU scripts (gpu_check.sh, gpu_beyond.sh) after PY is set: the gpu-kit's packages and
# encoder when the kit is there (../shared/gpu-kit/prepare.sh copies it into .gpu-kit/), a clear stop
# without CUDA, and CSV / ENCODER: the Open-I file and the encoder to train.
if [[ -z "${MINILM:-}" && -f .gpu-kit/setup.sh ]]; then
    source .gpu-kit/setup.sh || { echo "error: .gpu-kit/setup.sh failed"; exit 2; }
fi
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "error: CUDA is not available (GPU_CHECK_DRY=1 checks this script on CPU)"; exit 2; }
CSV=${OPENI_CSV:-../shared/data/openi/indiana_reports.csv}
ENCODER=${MINILM:-packaged:minilm}
