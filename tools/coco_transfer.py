#!/usr/bin/env python
"""COCO transfer: fine-tune one detector with each of several backbones under one schedule and
tabulate COCO AP (mmresfamily/transfer; `-h` for the options).

    python tools/coco_transfer.py --detector faster --data-root data/quickstart \\
        --backbone scratch "dict(type='mmresfamily.ResNet', depth=18)" ...
    tools/dist_coco_transfer.sh 2 ...              # distributed (rank 0 writes the files)
"""
from mmresfamily.transfer import main

if __name__ == '__main__':
    main()
