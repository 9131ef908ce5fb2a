#!/usr/bin/env python
"""Train a detector, segmentor or classifier from a config (mmresfamily/train.py; `-h`).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
"""
from mmresfamily.train import main

if __name__ == '__main__':
    main()
