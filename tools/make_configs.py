#!/usr/bin/env python
"""Write the detection / segmentation configs and the metafiles from the model table
(mmresfamily/configgen.py).

    python tools/make_configs.py [--check]
"""
from mmresfamily.configgen import main

if __name__ == '__main__':
    main()
