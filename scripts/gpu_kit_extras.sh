#!/usr/bin/env bash
# After ../shared/gpu-kit/prepare.sh (which rebuilds .gpu-kit/ from the shared kit): add the wheels of MTLV's
# dependencies that the shared kit lacks, for the GPU machine's Python 3.12 (it has no internet; this machine
# reaches PyPI). Without them the beyond grid cannot run there: kneed (k=auto), torchjd (PCGrad's aggregator
# library), and submitit + hydra-submitit-launcher (Hydra's plugin scan imports MTLV's SLURM launcher).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d .gpu-kit/whl ]] || { echo "error: .gpu-kit/whl not found: run ../shared/gpu-kit/prepare.sh first"; exit 2; }
${PYTHON:-.venv/bin/python} -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform any -d .gpu-kit/whl \
    torchjd==0.18.0 kneed==0.9.0 submitit==1.5.4 hydra-submitit-launcher==1.2.0
ls .gpu-kit/whl
