#!/usr/bin/env python
"""Convert another codebase's checkpoint into an mmresfamily backbone checkpoint.

    python tools/convert_weights.py SRC MODEL IN.pth OUT.pth

writes {'state_dict': ..., 'meta': {'backbone_cfg': ..., 'source': ..., 'dropped_keys': ...}};
`MODELS.build(meta['backbone_cfg']).load_state_dict(state_dict, strict=True)` reproduces the
source model's features. SRC and the MODEL names it takes (full lists: the docstrings of
mmresfamily/converters/*.py):

    timm         timm model names (resnet50d, resnest50d, res2net50_26w_4s, densenet121, dpn68, ...)
    torchvision  resnet18..152, resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, densenet121..
    mmdet, mmseg, mmpretrain
                 resnet50[_caffe], resnet50_v1c, resnet50_v1d, resnext50_32x4d, resnest50,
                 res2net50_w26_s4, densenet121 (mmpretrain); a whole detector / segmentor /
                 classifier checkpoint keeps its `backbone.*` keys and drops the rest
    official     resnest50, res2net50_26w_4s, res2net50_v1b_26w_4s, res2next50, hardnet68,
                 hardnet39ds, rednet50, ... (the authors' released layouts)

Examples: `python tools/convert_weights.py timm resnest50d in.pth out.pth`,
`python tools/convert_weights.py mmdet resnet50 faster_rcnn_r50_fpn_1x_coco.pth r50.pth`.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmresfamily.converters import CONVERTERS, convert, load_all  # noqa: E402
from mmresfamily.utils import load_checkpoint_file  # noqa: E402

load_all()


# sources whose checkpoints are mmengine/mmcv runner checkpoints (numpy scalars, HistoryBuffers)
RUNNER_SOURCES = ('mmdet', 'mmseg', 'mmpretrain', 'official')


def check_output_path(parser, output: Path):
    """Refuse an OUT that cannot be written before any work is done."""
    if output.is_dir():
        parser.error(f'output {output} is a directory; give a file name, e.g. {output}/out.pth')
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                parser.error(f'output {output}: {parent} is a file, not a directory')
            break


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', choices=sorted(CONVERTERS), help='layout of the input')
    parser.add_argument('model', help='model name in the source layout, e.g. resnet50d (see above)')
    parser.add_argument('input', type=Path)
    parser.add_argument('output', type=Path)
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f'input checkpoint not found: {args.input}')
    check_output_path(parser, args.output)
    try:
        # weights only: a checkpoint from elsewhere never gets to run code here; runner
        # checkpoints get the allow-list of their harmless extra types (the rest is refused)
        checkpoint = load_checkpoint_file(args.input,
                                          runner_checkpoint=args.source in RUNNER_SOURCES)
        # an unknown model name lists the allowed ones; weights that do not fit the backbone
        # name the keys that differ
        state_dict, cfg, dropped = convert(args.source, args.model, checkpoint)
    except ValueError as err:  # CheckpointError is one
        parser.error(str(err))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': state_dict,
                'meta': {'backbone_cfg': cfg, 'source': f'{args.source}:{args.model}',
                         'dropped_keys': dropped}}, args.output)
    print(f'{args.output}: {len(state_dict)} tensors for {cfg}; dropped {len(dropped)} '
          f'keys (classifier head / non-backbone)')


if __name__ == '__main__':
    main()
