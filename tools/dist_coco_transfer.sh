#!/usr/bin/env bash
# Distributed COCO transfer through torchrun (GPUs or CPUs):  tools/dist_coco_transfer.sh NPROC [args]
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=29500 tools/dist_coco_transfer.sh ...
exec "$(dirname "$0")/torchrun.sh" "$1" coco_transfer.py "${@:2}"
