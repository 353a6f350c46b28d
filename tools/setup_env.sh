#!/usr/bin/env bash
# Create or refresh the project-local virtual environment (.venv) with the pinned
# OpenMMLab stack. Idempotent: when nothing it depends on changed, it returns at once;
# otherwise pip re-runs, and pip's wheel cache keeps the mmcv build (minutes) to one time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMOHEM_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
constraints="$root/requirements/constraints.txt"
stamp="$venv/.mmohem-stamp"

digest="$(cat "$0" "$constraints" "$root/requirements/dev.txt" "$root/setup.py" | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
  exit 0
fi

echo "[setup_env] preparing $venv (first run builds mmcv's ops: about 7 minutes on 2 cores)"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check install -c "$constraints")

"${pip[@]}" --upgrade pip 'setuptools<82' wheel ninja
"${pip[@]}" torch torchvision numpy opencv-python
# With nvcc and a GPU that torch can use, mmcv's CUDA kernels are built too
# (FORCE_CUDA=1), and checked below. (PyPI's torch is a CUDA build even on
# machines without a GPU, where the CPU ops alone are built.)
force_cuda=0
if command -v nvcc >/dev/null 2>&1 && "$venv/bin/python" -c \
    'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  force_cuda=1
fi
build_mmcv() {
  MMCV_WITH_OPS=1 FORCE_CUDA=$force_cuda MAX_JOBS="${MAX_JOBS:-2}" \
    "${pip[@]}" --no-build-isolation "$@" mmcv==2.1.0
}
mmcv_has_cuda_ops() {
  "$venv/bin/python" -c 'import sys; from mmcv.ops import get_compiling_cuda_version as v; sys.exit(v() == "not available")'
}
build_mmcv
if [[ $force_cuda == 1 ]] && ! mmcv_has_cuda_ops; then
  # pip's cache held a wheel built without CUDA: build afresh, once.
  echo "[setup_env] mmcv has no CUDA ops: rebuilding it with FORCE_CUDA=1"
  build_mmcv --no-cache-dir --force-reinstall --no-deps
  mmcv_has_cuda_ops || { echo "[setup_env] mmcv still has no CUDA ops" >&2; exit 1; }
fi
"${pip[@]}" -r "$root/requirements/dev.txt"
# openmim's openxlab dependency pins setuptools 60, which cannot do PEP 660
# editable installs; openxlab (dataset downloads) works with a newer one too.
"${pip[@]}" 'setuptools>=64'
"${pip[@]}" --no-build-isolation --no-deps -e "$root"

"$venv/bin/python" -c "import mmcv.ops, mmdet, mmseg, mmohem" 
echo "$digest" > "$stamp"
echo "[setup_env] ready: $venv"
