#!/usr/bin/env bash
# Run tools/gpu_check.sh on a GPU machine without network whose python3 has
# a CUDA build of torch: install the bundle of tools/gpu/bundle.sh, build
# mmcv's nms and RoIAlign ops against that torch (tools/gpu/build_mmcv_ops.py,
# about a minute with ninja on 16 cores), then run the check with that python.
#
#   tools/gpu/offline_check.sh [BUNDLE] [OUT_DIR]
#     (defaults: .gpu_bundle, work_dirs/gpu_check)
# DEVICE=cpu builds the CPU ops only (a dry run of the pipeline without a
# GPU; pass gpu_check.sh's CHECK_ARGS=--quick BENCH=0 too).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bundle="${1:-.gpu_bundle}"
out="${2:-work_dirs/gpu_check}"
work="${TMPDIR:-/tmp}/mmohem_mmcv"
python3 -m pip install -q --disable-pip-version-check --no-index --no-deps \
  --no-compile "$bundle"/*.whl
mkdir -p "$work"
tar xzf "$bundle"/mmcv-2.1.0.tar.gz -C "$work"
if [[ "${DEVICE:-cuda}" == cpu ]]; then
  ops_args=(--cpu-only)
else
  ops_args=()
  TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$(python3 -c \
    'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}"
  export TORCH_CUDA_ARCH_LIST
fi
MAX_JOBS="${MAX_JOBS:-16}" python3 tools/gpu/build_mmcv_ops.py \
  --sdist "$work/mmcv-2.1.0" --out "$work/ops" --install-mmcv \
  --copy-into-mmcv "${ops_args[@]}"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHON=python3 \
  bash tools/gpu_check.sh "$out"
