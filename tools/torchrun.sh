#!/usr/bin/env bash
# Shared by dist_train.sh / dist_test.sh: run a tools/ script under torchrun, on GPUs (nccl) or
# CPUs (gloo).   tools/torchrun.sh NPROC SCRIPT.py [script args...]
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=29500
set -euo pipefail
NPROC=$1
SCRIPT=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
PYTHONPATH="$ROOT:${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
