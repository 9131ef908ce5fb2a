#!/usr/bin/env bash
# Training on slurm:  [GPUS=8 GPUS_PER_NODE=8] tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [args]
exec "$(dirname "$0")/srun.sh" "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
