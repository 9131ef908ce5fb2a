#!/usr/bin/env python
"""Evaluate a checkpoint on the config's test set (mmresfamily/evaluate.py; `-h`).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
"""
from mmresfamily.evaluate import main

if __name__ == '__main__':
    main()
