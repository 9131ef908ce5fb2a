#!/usr/bin/env bash
# Distributed testing through torchrun:  tools/dist_test.sh CONFIG CHECKPOINT NPROC [args]
exec "$(dirname "$0")/torchrun.sh" "$3" test.py "$1" "$2" "${@:4}"
