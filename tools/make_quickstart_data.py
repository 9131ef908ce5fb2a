#!/usr/bin/env python
"""Build the quickstart COCO dataset from Fashion-MNIST (mmresfamily/datasets/quickstart.py).

    python tools/make_quickstart_data.py [--out data/quickstart] [--train 2000] [--val 200]
"""
from mmresfamily.datasets.quickstart import main

if __name__ == '__main__':
    main()
