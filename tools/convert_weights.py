#!/usr/bin/env python
"""Convert another codebase's checkpoint into an mmresfamily backbone checkpoint.

    python tools/convert_weights.py SRC MODEL IN.pth OUT.pth

The same as `python -m mmresfamily convert SRC MODEL IN OUT` (`-h` lists the sources and model
names). Examples: `python tools/convert_weights.py timm resnest50d in.pth out.pth`,
`python tools/convert_weights.py mmdet resnet50 faster_rcnn_r50_fpn_1x_coco.pth r50.pth`.
"""
import sys

from mmresfamily.cli import main as cli_main


def main(argv=None):
    return cli_main(['convert', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__':
    main()
