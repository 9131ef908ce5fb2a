#!/usr/bin/env python
"""Checkpoint -> backbone-only weights named by their hash (mmresfamily/publish.py; `-h`).

    python tools/publish_backbone.py IN.pth OUT_DIR/NAME [--prefix backbone.]
"""
from mmresfamily.publish import main

if __name__ == '__main__':
    main()
