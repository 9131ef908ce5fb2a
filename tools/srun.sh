#!/usr/bin/env bash
# Shared by slurm_train.sh / slurm_test.sh: one task per GPU (or per CPU process with
# GPUS_PER_NODE=0).   [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5] tools/srun.sh PARTITION JOB SCRIPT.py [args]
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
SCRIPT=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
GRES=()
[ "$GPUS_PER_NODE" -gt 0 ] && GRES=(--gres="gpu:$GPUS_PER_NODE")
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec srun -p "$PARTITION" --job-name="$JOB_NAME" "${GRES[@]}" \
    --ntasks="$GPUS" --ntasks-per-node="$(( GPUS_PER_NODE > 0 ? GPUS_PER_NODE : GPUS ))" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$ROOT/tools/$SCRIPT" "${@:4}" --launcher=slurm
