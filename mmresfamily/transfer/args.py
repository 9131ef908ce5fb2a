"""The command line of the COCO transfer run, checked before anything is built."""
import argparse
import re
import sys
from pathlib import Path

from ..utils.paths import REPO_ROOT

DETECTORS = ('faster', 'mask', 'retinanet', 'cascade')
TEMPLATES = {
    'quickstart': {'faster': 'configs/quickstart/faster-rcnn_r18_fpn_quickstart.py',
                   'mask': 'configs/quickstart/mask-rcnn_r18_fpn_quickstart.py',
                   'retinanet': 'configs/coco_transfer/retinanet_r18_fpn_quickstart.py',
                   'cascade': 'configs/coco_transfer/cascade-rcnn_r18_fpn_quickstart.py'},
    'coco': {'faster': 'configs/mmdet/resnet/faster-rcnn_r50_fpn_1x_coco.py',
             'mask': 'configs/mmdet/resnet/mask-rcnn_r50_fpn_1x_coco.py',
             'retinanet': 'configs/mmdet/resnet/retinanet_r50_fpn_1x_coco.py',
             'cascade': 'configs/mmdet/resnet/cascade-rcnn_r50_fpn_1x_coco.py'},
}


def template_config(args) -> Path:
    """The config the runs of `--recipe` / `--detector` start from."""
    return REPO_ROOT / TEMPLATES[args.recipe][args.detector]


def parse_args(argv=None):
    from ..utils.launch import CfgOptionsAction
    parser = argparse.ArgumentParser(description=sys.modules[__package__].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--backbone', nargs='+', action='append', required=True,
                        metavar='NAME SPEC [CHECKPOINT]',
                        help='a backbone to compare (repeat the flag for each)')
    parser.add_argument('--detector', choices=DETECTORS, default='faster')
    parser.add_argument('--recipe', choices=tuple(TEMPLATES), default='quickstart',
                        help='template configs: quickstart (small images) or coco (mmdet 1x)')
    parser.add_argument('--data-root', type=Path, required=True)
    for split in ('train', 'val'):
        parser.add_argument(f'--{split}-ann', help=f'{split} json, relative to --data-root')
        parser.add_argument(f'--{split}-img', help=f'{split} image folder (prefix of the json '
                            'file names), relative to --data-root')
    parser.add_argument('--classes', nargs='+', help='train on these categories only '
                        '(default: every category of the train json)')
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--lr', type=float, help="default: the template's (quickstart: AdamW "
                        '1e-3 for batch 8; coco: SGD 0.02 for a total batch of 16)')
    parser.add_argument('--batch-size', type=int, help="images per process; default: the "
                        "template's")
    parser.add_argument('--image-size', help="S or W,H: images are resized to fit (keeping "
                        "their aspect ratio); default: the template's")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', type=Path, default=REPO_ROOT / 'work_dirs/coco_transfer')
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'docs/coco_transfer',
                        help='prefix of the .csv, .md and .png written')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override entries of every run config (applied last)')
    parser.add_argument('--verbose', action='store_true',
                        help="also show mmengine's log on the console (it is always written to "
                        'the work dir); default: progress bar and results only')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)

    for flag, value in (('--iters', args.iters), ('--batch-size', args.batch_size)):
        if value is not None and value < 1:
            parser.error(f'{flag} must be a positive integer, got {value}')
    if args.lr is not None and args.lr <= 0:
        parser.error(f'--lr must be positive, got {args.lr}')
    if args.image_size is not None:
        args.image_size = parse_image_size(parser, args.image_size)
    names = set()
    for entry in args.backbone:
        if len(entry) not in (2, 3):
            parser.error(f'--backbone expects NAME SPEC [CHECKPOINT], got {len(entry)} values: '
                         f'{entry}')
        if not re.fullmatch(r'[A-Za-z0-9][\w.+-]*', entry[0]):
            parser.error(f'--backbone NAME {entry[0]!r}: use letters, digits and _ . + - '
                         '(it names a work directory)')
        if entry[0] in names:
            parser.error(f'--backbone NAME {entry[0]!r} is given twice')
        names.add(entry[0])
        if len(entry) == 3 and not Path(entry[2]).is_file():
            parser.error(f'--backbone {entry[0]}: checkpoint not found: {entry[2]}')
    return args


def parse_image_size(parser, text):
    parts = text.replace('x', ',').split(',')
    if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) > 0 for p in parts):
        sizes = [int(p) for p in parts]
        return (sizes[0], sizes[-1])
    parser.error(f'--image-size must be S or W,H (positive integers), got {text!r}')
