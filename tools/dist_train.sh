#!/usr/bin/env bash
# Distributed training with mmengine's `pytorch` launcher, one process per
# device (or per CPU slot, with the gloo backend, on a machine without CUDA).
#
#   tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py options]
#
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# PYTHON picks the interpreter (default: the project's .venv, else python).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCS [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
NUM_PROCS=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python; fi
fi
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NUM_PROCS" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
