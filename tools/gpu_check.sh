#!/usr/bin/env bash
# Release check on one NVIDIA GPU: correctness (tools/gpu_check.py) and the
# GPU timing tables (tools/analysis_tools/bench_roi_sampler.py, tools/analysis_tools/bench_seg.py).
#
#   tools/gpu_check.sh [OUT_DIR]        (default: work_dirs/gpu_check)
#
# Sets up .venv with `make env` first (tools/setup_env.sh builds mmcv with
# its CUDA ops when nvcc and a GPU are present). With PYTHON=/path/to/python
# it uses that interpreter's packages instead and sets nothing up
# (tools/gpu/offline_check.sh does so on a machine without network).
# Writes OUT_DIR/gpu_check.{json,md}, roi_sampler.{json,md}, seg.{json,md};
# exits non-zero when a check fails.
# For a dry run on a CPU: DEVICE=cpu CHECK_ARGS=--quick BENCH=0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-work_dirs/gpu_check}"
device="${DEVICE:-cuda}"
if [[ -z "${PYTHON:-}" ]]; then
  make env
  PYTHON=.venv/bin/python
fi
mkdir -p "$out"
status=0
# shellcheck disable=SC2086
"$PYTHON" tools/gpu_check.py --device "$device" --out "$out" ${CHECK_ARGS:-} \
  || status=$?
if [[ "${BENCH:-1}" == 1 ]]; then
  "$PYTHON" tools/analysis_tools/bench_roi_sampler.py --device "$device" \
    --size 1333x800 --batch 2 --warmup 3 --iters 10 \
    --variants "RandomSampler (mmdet)" "OHEMSampler (mmdet)" \
    "mmohem OHEMSampler, NMS 0.7" --out "$out/roi_sampler.json" \
    | tee "$out/roi_sampler.md"
  "$PYTHON" tools/analysis_tools/bench_seg.py --device "$device" --cases sampler/mmseg \
    sampler/mmohem loss/ce loss/mmohem --out "$out/seg.json" \
    | tee "$out/seg.md"
fi
exit "$status"
