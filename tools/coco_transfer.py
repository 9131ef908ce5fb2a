#!/usr/bin/env python
"""COCO transfer evaluation: fine-tune one detector with each of several backbones under one
shared schedule, evaluate COCO bbox (and segm) AP with pycocotools, and write a CSV, a Markdown
table and a bar chart.

    python tools/coco_transfer.py --detector faster --data-root data/quickstart \\
        --backbone scratch "dict(type='mmresfamily.ResNet', depth=18)" \\
        --backbone fmnist "dict(type='mmresfamily.ResNet', depth=18)" \\
                          checkpoints/r18_fmnist-XXXXXXXX.pth \\
        --iters 600 --out docs/coco_transfer
    tools/dist_coco_transfer.sh 2 ...              # distributed (rank 0 writes the files)

--backbone NAME SPEC [CHECKPOINT] (repeatable): SPEC is a backbone dict, `dict(...)` or `{...}`,
or the name of a configs/_base_/backbones/ file (its `backbone_det`). CHECKPOINT: backbone-only
weights (tools/publish_backbone.py), a full classification checkpoint (its `backbone.` keys are
used) or converted weights (tools/convert_weights.py); without one the backbone starts from
scratch. The neck's in_channels follow the backbone's out_channels.

Templates (--recipe): `quickstart` (default, small images and data) uses configs/quickstart
(Faster / Mask R-CNN) and configs/coco_transfer (RetinaNet, Cascade): narrow FPN/heads, small
anchors. `coco` uses the stock mmdet 1x COCO configs in configs/mmdet/resnet. In both, the tool
replaces backbone, neck in_channels, num_classes, data paths and classes, image size and schedule:
--iters iterations, --batch-size, the template's optimizer at --lr, linear warm-up then cosine.

Data (--data-root): COCO-format json + images. Without --train-ann/--val-ann/--train-img/--val-img
the quickstart layout (annotations/instances_{train,val}.json, {train,val}/images/) or else the
COCO 2017 one (annotations/instances_{train,val}2017.json, {train,val}2017/) is used. Classes are
the train json's categories in their order (--classes picks a subset); num_classes follows.

Outputs: OUT.csv (one row per backbone x detector x iters), OUT.md and OUT.png (bbox mAP, mAP@0.5
and segm mAP per backbone). Rows already in OUT.csv are skipped; a run interrupted mid-training
resumes from the last checkpoint in WORK_DIR/DETECTOR_NAME_ITERSit. The console shows a progress
bar and results (--verbose adds mmengine's log, always written to the work dir); --cfg-options
k=v overrides every run's config last.
"""
import argparse
import ast
import contextlib
import csv
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
# (train json, train images, val json, val images), relative to --data-root, tried in order
LAYOUTS = (
    ('annotations/instances_train.json', 'train/images/', 'annotations/instances_val.json',
     'val/images/'),
    ('annotations/instances_train2017.json', 'train2017/', 'annotations/instances_val2017.json',
     'val2017/'),
)
BACKBONE_FILES = ROOT / 'configs/_base_/backbones'
METRICS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'segm_mAP', 'segm_mAP_50', 'segm_mAP_75')
COLUMNS = ('backbone', 'pretrained', 'detector', 'iters') + METRICS + ('train_seconds',)


def parse_args(argv=None):
    from mmresfamily.utils.launch import CfgOptionsAction
    parser = argparse.ArgumentParser(description=__doc__,
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
    parser.add_argument('--work-dir', type=Path, default=ROOT / 'work_dirs/coco_transfer')
    parser.add_argument('--out', type=Path, default=ROOT / 'docs/coco_transfer',
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


def parse_backbone_spec(name, spec):
    """`dict(...)` / `{...}` (literals only: nothing is executed) or a backbone config name."""
    text = spec.strip()
    if text.startswith(('dict(', '{')):
        def literal(node):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id == 'dict' and not node.args:
                return {kw.arg: literal(kw.value) for kw in node.keywords}
            if isinstance(node, ast.Dict):
                return {literal(k): literal(v) for k, v in zip(node.keys, node.values)}
            if isinstance(node, (ast.List, ast.Tuple)):
                values = [literal(v) for v in node.elts]
                return values if isinstance(node, ast.List) else tuple(values)
            return ast.literal_eval(node)
        try:
            cfg = literal(ast.parse(text, mode='eval').body)
        except (SyntaxError, ValueError) as err:
            raise SystemExit(f'--backbone {name}: SPEC is not a literal dict ({err}): {spec}')
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise SystemExit(f'--backbone {name}: SPEC needs a dict with a type, got: {spec}')
        return cfg
    path = Path(text) if text.endswith('.py') else BACKBONE_FILES / f'{text}.py'
    if not path.is_file():
        known = ', '.join(sorted(p.stem for p in BACKBONE_FILES.glob('*.py')))
        raise SystemExit(f"--backbone {name}: SPEC {spec!r} is neither dict(...) nor a backbone "
                         f"config; known names: {known}")
    from mmengine.config import Config
    cfg = Config.fromfile(str(path)).get('backbone_det')
    if cfg is None:
        raise SystemExit(f'--backbone {name}: {path} defines no backbone_det')
    cfg = cfg.to_dict()
    cfg.pop('_delete_', None)
    return cfg


def build_backbone(name, cfg):
    """The backbone once, to read its out_channels (and check checkpoint keys)."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmresfamily.registry import MODELS as OURS
    type_ = str(cfg['type'])
    if type_.startswith('mmresfamily.') and OURS.get(type_.split('.', 1)[1]) is None:
        raise SystemExit(f'--backbone {name}: type {type_!r} is not an mmresfamily backbone; '
                         f'registered: {", ".join(sorted(OURS.module_dict))}')
    try:
        backbone = MODELS.build(dict(cfg, init_cfg=None))
    except Exception as err:  # unknown type, bad option, ...: say which --backbone
        raise SystemExit(f'--backbone {name}: cannot build {cfg}: {type(err).__name__}: {err}')
    channels = getattr(backbone, 'out_channels', None)
    if not isinstance(channels, (tuple, list)):  # e.g. mmdet's own backbones: ask a forward
        with torch.no_grad():
            channels = [f.shape[1] for f in backbone.eval()(torch.zeros(1, 3, 64, 64))]
    return backbone, list(channels)


def backbone_weights(name, path, backbone, out_file):
    """CHECKPOINT -> a file of `backbone.`-prefixed tensors that fit `backbone` (checked here,
    before any training: a bad file or a checkpoint of another backbone fails at once)."""
    import torch
    from mmresfamily.utils import (CheckpointError, check_state_dict_fits, load_checkpoint_file,
                                   select_prefix, unwrap_state_dict)
    try:  # full classification checkpoints hold runner state: the allow-list admits it
        state = unwrap_state_dict(load_checkpoint_file(path, runner_checkpoint=True),
                                  f'checkpoint {path}')
        state = {k: v for k, v in state.items() if torch.is_tensor(v)}
        # a classifier / detector keeps the backbone under `backbone.`; converted weights
        # (tools/convert_weights.py) carry bare backbone keys
        state = select_prefix(state, 'backbone.') or state
        check_state_dict_fits(backbone, state, f'checkpoint {path}', 'the backbone')
    except CheckpointError as err:
        raise SystemExit(f'--backbone {name}: {err}')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, out_file)
    return str(out_file)


def evaluable_ann_file(root, ann, tmp):
    """pycocotools counts a detection matched to annotation id 0 as unmatched (its match array
    uses 0 for 'none'), so 0-based ids (e.g. labelme2coco's) lower AP: evaluate on a copy with
    ids + 1 then. Returns the json to use (relative to root, or absolute)."""
    coco = json.loads((root / ann).read_text())
    if all(a.get('id') != 0 for a in coco.get('annotations', [])):
        return ann
    for a in coco['annotations']:
        a['id'] += 1
    fixed = tmp / 'val_ids_from_1.json'
    fixed.write_text(json.dumps(coco))
    if os.environ.get('RANK', '0') == '0':
        print(f'[coco_transfer] note: {root / ann} numbers annotations from 0, which pycocotools '
              'cannot match; evaluating on a copy with ids + 1', flush=True)
    return str(fixed)


def resolve_data(args, tmp):
    """(train json, train images, val json, val images) relative to --data-root; the classes;
    the number of train images."""
    root = args.data_root
    if not root.is_dir():
        raise SystemExit(f'--data-root: not a directory: {root}')
    given = (args.train_ann, args.train_img, args.val_ann, args.val_img)
    flags = ('--train-ann', '--train-img', '--val-ann', '--val-img')
    for layout in LAYOUTS:
        paths = [g if g is not None else d for g, d in zip(given, layout)]
        if all((root / p).exists() for p in paths):
            break
    else:
        tried = ' | '.join(', '.join(f'{f} {g if g is not None else d}'
                                     for f, g, d in zip(flags, given, layout))
                           for layout in LAYOUTS)
        raise SystemExit(f'--data-root {root}: COCO files not found (tried: {tried}); '
                         'give --train-ann/--train-img/--val-ann/--val-img')
    categories, images = {}, {}
    for split, ann in (('train', paths[0]), ('val', paths[2])):
        coco = json.loads((root / ann).read_text())
        if not coco.get('categories'):
            raise SystemExit(f'--{split}-ann {root / ann}: no categories in the json')
        categories[split] = [c['name'] for c in coco['categories']]
        images[split] = len(coco.get('images', []))
    classes = categories['train']
    if args.classes:
        unknown = [c for c in args.classes if c not in classes]
        if unknown:
            raise SystemExit(f'--classes: {unknown} not among the train categories: {classes}')
        classes = [c for c in classes if c in args.classes]  # keep the json's order (labels)
    missing = [c for c in classes if c not in categories['val']]
    if missing:
        raise SystemExit(f'--val-ann: categories {missing} of the train json are missing')
    paths[2] = evaluable_ann_file(root, paths[2], tmp)
    return paths, classes, images['train']


def make_configure(args, run, data, classes, train_images, init_file, channels, resume):
    """Turn a template config into this run's config (applied by launch.make_runner)."""
    from mmengine.config import ConfigDict
    (train_ann, train_img, val_ann, val_img), root = data, str(args.data_root)

    def set_num_classes(node, key=''):
        if isinstance(node, dict):
            if 'num_classes' in node and key != 'rpn_head':
                node['num_classes'] = len(classes)
            for k, v in node.items():
                set_num_classes(v, k)
        elif isinstance(node, list):
            for v in node:
                set_num_classes(v, key)

    def set_dataset(loader, ann, img):
        dataset = loader.dataset
        while 'dataset' in dataset:  # dataset wrappers
            dataset = dataset.dataset
        dataset.update(data_root=root, ann_file=ann, data_prefix=dict(img=img),
                       metainfo=dict(classes=tuple(classes)))
        if args.image_size:
            for step in dataset.pipeline:
                if step['type'] in ('Resize', 'mmdet.Resize'):
                    step.update(scale=args.image_size, keep_ratio=True)

    def configure(cfg):
        cfg.model.backbone = ConfigDict(
            run['cfg'], init_cfg=init_file and dict(type='Pretrained', checkpoint=init_file,
                                                    prefix='backbone.'))
        cfg.model.neck.in_channels = channels
        set_num_classes(cfg.model)
        set_dataset(cfg.train_dataloader, train_ann, train_img)
        set_dataset(cfg.test_dataloader, val_ann, val_img)
        cfg.test_evaluator.ann_file = os.path.join(root, val_ann)
        # evaluated once, by runner.test() after training
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        if args.batch_size:
            cfg.train_dataloader.batch_size = args.batch_size
        # the shared schedule: template optimizer, linear warm-up, cosine to lr / 100
        iters = args.iters
        lr = args.lr or cfg.optim_wrapper.optimizer.lr
        cfg.optim_wrapper.optimizer.lr = lr
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
                 end=min(100, max(1, iters // 6))),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=iters, eta_min=lr / 100)]
        cfg.log_processor = dict(by_epoch=False)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(1, min(50, iters // 10)))
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                            interval=max(1, -(-iters // 5)), max_keep_ckpts=1)
        cfg.randomness = dict(seed=args.seed)
        cfg.resume, cfg.load_from = resume, None
        cfg.experiment_name = f'{run["key"]}_{time.strftime("%Y%m%d_%H%M%S")}'
        if cfg.get('visualizer'):  # a named instance is global: a later run would reuse it
            cfg.visualizer.name = cfg.experiment_name
        cfg.merge_from_dict(args.cfg_options)
        # mmengine's iteration loop sleeps 2 s at every epoch end: repeat a small train set
        # so that an epoch lasts at least 200 iterations
        repeat = -(-200 * cfg.train_dataloader.batch_size // max(1, train_images))
        if repeat > 1:
            cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=repeat,
                                                dataset=cfg.train_dataloader.dataset)
    return configure


def read_rows(csv_path):
    if not csv_path.is_file():
        return []
    with csv_path.open(newline='') as f:
        return list(csv.DictReader(f))


def row_key(row):
    return (row['backbone'], row['detector'], str(row['iters']))


def write_outputs(rows, prefix):
    """CSV (all rows), Markdown table and a horizontal bar chart, written atomically."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    csv_path = prefix.with_name(prefix.name + '.csv')
    tmp = csv_path.with_suffix('.tmp')
    with tmp.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(csv_path)

    shown = [m for m in METRICS if any(r.get(m) not in (None, '') for r in rows)]
    lines = ['| backbone | pretrained | detector | iters | ' + ' | '.join(shown) +
             ' | train s |', '|' + '---|' * (len(shown) + 5)]
    for r in rows:
        lines.append(f'| {r["backbone"]} | {r["pretrained"]} | {r["detector"]} | {r["iters"]} '
                     '| ' + ' | '.join(r.get(m) or '' for m in shown) +
                     f' | {r["train_seconds"]} |')
    prefix.with_name(prefix.name + '.md').write_text(
        'COCO transfer: COCO AP (pycocotools) after fine-tuning with one shared schedule.\n\n' +
        '\n'.join(lines) + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    plotted = [m for m in ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP') if m in shown]
    several = len({r['detector'] for r in rows}) > 1
    labels = [r['backbone'] + (f' ({r["detector"]})' if several else '') for r in rows]
    height = 0.8 / max(1, len(plotted))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * len(rows) * max(1, len(plotted))))
    for i, metric in enumerate(plotted):
        values = [float(r[metric]) if r.get(metric) else 0.0 for r in rows]
        ys = [j + (i - (len(plotted) - 1) / 2) * height for j in range(len(rows))]
        bars = ax.barh(ys, values, height=height, label=metric)
        ax.bar_label(bars, fmt='%.3f', fontsize=8, padding=2)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel('COCO AP')
    ax.set_title(f'COCO transfer ({", ".join(sorted({r["detector"] for r in rows}))})')
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    fig.savefig(prefix.with_name(prefix.name + '.png'), dpi=100)
    plt.close(fig)


def make_progress_hook(bar, header):
    """Advance one progress bar over every pending run's iterations (rank 0 only)."""
    from mmengine.hooks import Hook

    class TransferProgressHook(Hook):
        priority = 'VERY_LOW'

        def before_train(self, runner):
            print(f'\n{header}', file=bar.file, flush=True)
            if runner.iter:  # resumed: count the iterations done before
                bar.update(runner.iter)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            bar.update()

    return TransferProgressHook()


def main(argv=None):
    args = parse_args(argv)
    # tmp: per process (ranks share no file); devnull: mmengine's console log unless --verbose
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, 'w') as devnull:
        try:
            return transfer(args, Path(tmp), devnull)
        finally:
            import torch.distributed as dist
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


def transfer(args, tmp, devnull):
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    import torch
    from mmengine.dist import broadcast_object_list, get_rank, is_distributed
    from mmengine.utils import ProgressBar

    from mmresfamily.utils.launch import make_runner, setup_launcher

    template = ROOT / TEMPLATES[args.recipe][args.detector]
    data, classes, train_images = resolve_data(args, tmp)
    if args.launcher != 'none':  # the process group first: ranks agree on the rows to run
        if torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist(args.launcher)
        else:
            from mmengine.config import Config
            setup_launcher(Config(dict(model=dict())), args.launcher)
    rank0 = get_rank() == 0
    prefix = args.out if args.out.is_absolute() else Path.cwd() / args.out
    csv_path = prefix.with_name(prefix.name + '.csv')
    rows = [read_rows(csv_path)]
    if is_distributed():
        broadcast_object_list(rows)  # rank 0's file decides
    rows = rows[0]
    done = {row_key(r) for r in rows}

    runs = []
    for name, spec, *ckpt in args.backbone:
        run = dict(name=name, ckpt=ckpt[0] if ckpt else None,
                   key=f'{args.detector}_{name}_{args.iters}it')
        if (name, args.detector, str(args.iters)) in done:
            if rank0:
                print(f'[coco_transfer] skip {name} ({args.detector}, {args.iters} iters): '
                      f'already in {csv_path}', flush=True)
            continue
        run['cfg'] = parse_backbone_spec(name, spec)
        run['backbone'], run['channels'] = build_backbone(name, run['cfg'])
        runs.append(run)
        frozen, norm_eval = run['cfg'].get('frozen_stages'), run['cfg'].get('norm_eval')
        if rank0 and not ckpt and (frozen is not None and frozen >= 0 or norm_eval):
            print(f'[coco_transfer] warning: {name} starts from scratch with frozen_stages='
                  f'{frozen}, norm_eval={norm_eval}: random weights / statistics that stay '
                  'fixed', flush=True)
        if rank0 and len(run['channels']) != 4:
            print(f'[coco_transfer] warning: {name} emits {len(run["channels"])} feature maps; '
                  'the templates expect 4 (strides 4-32, out_indices=(0, 1, 2, 3))', flush=True)
    if not runs:
        if rank0:
            print('[coco_transfer] nothing to do', flush=True)
        return rows

    bar = ProgressBar(len(runs) * args.iters) if rank0 else None
    for i, run in enumerate(runs):
        work_dir = args.work_dir / run['key']
        init_file = run['ckpt'] and backbone_weights(
            run['name'], run['ckpt'], run['backbone'], tmp / f'{run["key"]}.pth')
        del run['backbone']
        resume = (work_dir / 'last_checkpoint').is_file()
        runner_args = argparse.Namespace(config=str(template), cfg_options=None,
                                         work_dir=str(work_dir), launcher=args.launcher,
                                         local_rank=args.local_rank)
        # mmengine's console handler binds sys.stdout when the runner builds its logger:
        # unless --verbose, bind it to devnull (the log file in the work dir keeps it all)
        with contextlib.redirect_stdout(sys.stdout if args.verbose else devnull):
            runner = make_runner(runner_args, make_configure(
                args, run, data, classes, train_images, init_file, run['channels'],
                resume))
        if rank0:
            runner.register_hook(make_progress_hook(bar, (
                f'[coco_transfer] run {i + 1}/{len(runs)}: {run["name"]} '
                f'({run["ckpt"] or "scratch"}), {args.detector}, {args.iters} iters' +
                (', resumed' if resume else ''))))
        start = time.time()
        with contextlib.redirect_stdout(sys.stdout if args.verbose else devnull):
            runner.train()  # (pycocotools prints while the datasets are built)
        seconds = time.time() - start
        with contextlib.redirect_stdout(sys.stdout if args.verbose else devnull):
            metrics = runner.test()  # pycocotools prints its summary; the log has it
        row = dict(backbone=run['name'], pretrained=run['ckpt'] or 'scratch',
                   detector=args.detector, iters=args.iters,
                   train_seconds=f'{seconds:.1f}')
        kinds = runner.cfg.test_evaluator.get('metric', 'bbox')
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        for m in METRICS:
            value = metrics.get(f'coco/{m}')
            if value is None and m.split('_')[0] in kinds:
                value = 0.0  # no detection at all: CocoMetric returns no AP
            row[m] = '' if value is None else f'{float(value):.4f}'
        rows.append(row)
        if rank0:
            write_outputs(rows, prefix)
            print(f'\n[coco_transfer] {run["name"]}: ' + ', '.join(
                f'{m} {row[m]}' for m in METRICS if row[m]) + f' -> {csv_path}', flush=True)
        del runner
    if rank0:
        print(f'\n[coco_transfer] wrote {csv_path}, {prefix}.md, {prefix}.png', flush=True)
    return rows


if __name__ == '__main__':
    main()
