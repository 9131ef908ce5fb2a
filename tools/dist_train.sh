#!/usr/bin/env bash
# Distributed training through torchrun (GPUs or CPUs):  tools/dist_train.sh CONFIG NPROC [args]
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=29500 tools/dist_train.sh ...
exec "$(dirname "$0")/torchrun.sh" "$2" train.py "$1" "${@:3}"
