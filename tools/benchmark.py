#!/usr/bin/env python
"""Benchmarks of the backbones and of the involution operator (mmresfamily/benchmark).

    python tools/benchmark.py models [--variants ResNet-50 ...] [--batch 8] [--size 224] ...
    python tools/benchmark.py involution --channels 64 --size 56 --batch 8
"""
import sys

from mmresfamily.benchmark import main as benchmark


def main(argv=None):
    return benchmark(sys.argv[1:] if argv is None else argv, prog='python tools/benchmark.py')


if __name__ == '__main__':
    main()
