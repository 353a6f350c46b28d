#!/usr/bin/env bash
# Gather what an offline GPU machine needs to run tools/gpu_check.sh with its
# own python3 and CUDA torch: the OpenMMLab wheels it lacks (for CPython 3.12
# on x86-64 by default) and mmcv 2.1.0's source distribution, whose nms and
# RoIAlign ops tools/gpu/offline_check.sh builds there.
#
#   tools/gpu/bundle.sh [DEST]       (default: .gpu_bundle, git-ignored)
#
# PY_VERSION=3.11 picks another CPython. Needs the package index (PyPI).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${1:-$root/.gpu_bundle}"
py_version="${PY_VERSION:-3.12}"
python="${PYTHON:-$root/.venv/bin/python}"
mkdir -p "$dest"
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
# The machines of this project's GPU checks have numpy, scipy, matplotlib,
# opencv-python-headless, pyyaml, rich, packaging, six, tqdm, regex and
# ninja; everything else OpenMMLab imports comes from here, and setuptools
# < 82, whose pkg_resources mmengine's `mmdet::` config lookup imports.
"$python" -m pip download --disable-pip-version-check --no-deps \
  --only-binary=:all: --python-version "$py_version" --implementation cp \
  "${platforms[@]}" -d "$dest" \
  'mmengine==0.10.7' 'mmdet==3.3.0' 'mmsegmentation==1.2.2' addict yapf \
  platformdirs termcolor terminaltables pycocotools shapely prettytable \
  wcwidth ftfy 'setuptools<82'
# The sdist's metadata step imports pkg_resources: build it with this
# environment's setuptools (< 82), not an isolated new one.
"$python" -m pip download --disable-pip-version-check --no-deps \
  --no-binary=:all: --no-build-isolation -d "$dest" 'mmcv==2.1.0'
du -sh "$dest"
