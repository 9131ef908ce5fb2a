#!/usr/bin/env python
"""The main job: quickstart data, a detector trained with an mmresfamily backbone, COCO AP, a
loss curve and an image of predictions (mmresfamily/quickstart.py; `-h`).

    python tools/quickstart.py [--config CONFIG] [--work-dir DIR] [--iters N]
"""
from mmresfamily.quickstart import main

if __name__ == '__main__':
    main()
