#!/usr/bin/env python
"""Parameters and FLOPs of a detector, segmentor or classifier config (mmresfamily/flops.py).

    python tools/get_flops.py CONFIG [--shape H W] [--cfg-options k=v ...] [--csv OUT]
"""
from mmresfamily.flops import main

if __name__ == '__main__':
    main()
