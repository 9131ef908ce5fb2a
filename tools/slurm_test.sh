#!/usr/bin/env bash
# Testing on slurm:  [GPUS=8 GPUS_PER_NODE=8] tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [args]
exec "$(dirname "$0")/srun.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"
