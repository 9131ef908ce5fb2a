#!/usr/bin/env python
"""Pretrain one variant of every family on real Fashion-MNIST and write the results table
(mmresfamily/pretrain/table.py; `-h`).

    python tools/pretrain_fashion_mnist.py [--configs C1.py C2.py ...] [--work-dir DIR]
                                           [--out docs/fashion_mnist_pretraining]
"""
from mmresfamily.pretrain.table import main

if __name__ == '__main__':
    main()
