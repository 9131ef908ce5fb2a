"""Pretrain one variant of every family on real Fashion-MNIST and write the results table
(`tools/pretrain_fashion_mnist.py`).

    python tools/pretrain_fashion_mnist.py [--configs C1.py C2.py ...] [--work-dir DIR]
                                           [--out docs/fashion_mnist_pretraining]

Runs `python -m mmresfamily.train CONFIG --work-dir WORK_DIR/NAME` (what tools/train.py runs)
for each config (default: every `configs/pretrain/fashion-mnist/*_fashion-mnist.py`;
mmpretrain ImageClassifier, 32x32), one after another, and writes OUT.csv and OUT.md with
top-1 on the 10,000 test images, epochs (images seen / 60,000), wall time of the training
command, params and the machine. Rows already in OUT.csv are skipped, so an interrupted table
resumes; a run itself resumes from its checkpoint (`--resume`). The checkpoints feed
tools/publish_backbone.py and tools/coco_transfer.py.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from ..utils.csv_table import read_csv, write_csv
from ..utils.launch import read_scalars
from ..utils.machine import cpu_name
from ..utils.paths import CONFIGS

CONFIG_DIR = CONFIGS / 'pretrain/fashion-mnist'
CONFIG_SUFFIX = '_fashion-mnist.py'
TRAIN_IMAGES = 60000
COLUMNS = ['model', 'backbone', 'params_M', 'iters', 'epochs', 'top1', 'train_s', 'machine']


def classifier_configs():
    """Every family's Fashion-MNIST classifier config, by name."""
    return sorted(CONFIG_DIR.glob(f'*{CONFIG_SUFFIX}'))


def classifier_name(config) -> str:
    """`resnet18` of `.../resnet18_fashion-mnist.py`: its row and work_dir name."""
    return Path(config).name[:-len(CONFIG_SUFFIX)]


def machine():
    import torch
    return f'{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__.split("+")[0]}'


def last_accuracy(work_dir: Path) -> float:
    """top-1 (%) of the last validation the run logged."""
    records = read_scalars(work_dir)
    values = [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]
    if not values:
        raise RuntimeError(f'the scalars log under {work_dir} has no accuracy/top1: did '
                           f'validation run?')
    return values[-1]


def describe(config: Path, cfg_options):
    """(backbone text, params M, iters, batch) of a config's model and schedule."""
    from ..registry import MODELS
    from ..utils.launch import CfgOptionsAction, load_config
    parser = argparse.ArgumentParser()  # the training command's reading of `k=v` strings
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    options = parser.parse_args(['--cfg-options'] + cfg_options).cfg_options if cfg_options \
        else None
    cfg = load_config(str(config), options)
    backbone = {k: v for k, v in cfg.model.backbone.items()
                if k not in ('out_indices', 'init_cfg')}
    model = MODELS.build(dict(cfg.model.backbone, in_channels=3))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    text = ', '.join(f'{k}={v!r}' for k, v in backbone.items() if k != 'type')
    return (f'{backbone["type"].split(".")[-1]}({text})', params, cfg.train_cfg.max_iters,
            cfg.train_dataloader.batch_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', nargs='+', type=Path,
                        default=classifier_configs())
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/fashion_mnist'))
    parser.add_argument('--out', type=Path, default=Path('docs/fashion_mnist_pretraining'))
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed to every training run (e.g. train_cfg.max_iters=2)')
    args = parser.parse_args(argv)
    missing = [str(c) for c in args.configs if not c.is_file()]
    if missing:
        parser.error(f'--configs: not found: {", ".join(missing)}')
    csv_path, md_path = args.out.with_suffix('.csv'), args.out.with_suffix('.md')
    rows = read_csv(csv_path)
    done = {r['model'] for r in rows}
    for i, config in enumerate(args.configs, 1):
        name = classifier_name(config)
        if name in done:
            print(f'[{i}/{len(args.configs)}] {name}: in {csv_path}, skipped', flush=True)
            continue
        backbone, params, iters, batch = describe(config, args.cfg_options)
        work_dir = args.work_dir / name
        print(f'[{i}/{len(args.configs)}] {name}: training {iters} iterations ...', flush=True)
        start = time.time()
        subprocess.run([sys.executable, '-m', 'mmresfamily.train', str(config),
                        '--work-dir', str(work_dir), '--resume'] +
                       (['--cfg-options'] + args.cfg_options if args.cfg_options else []),
                       check=True)
        rows.append(dict(model=name, backbone=backbone, params_M=f'{params:.2f}', iters=iters,
                         epochs=f'{iters * batch / TRAIN_IMAGES:.2f}',
                         top1=f'{last_accuracy(work_dir):.2f}',
                         train_s=f'{time.time() - start:.0f}', machine=machine()))
        print(f'    top-1 {rows[-1]["top1"]} % in {rows[-1]["train_s"]} s', flush=True)
        write_csv(csv_path, rows, COLUMNS)  # after every run: nothing lost on a crash
    lines = ['| model | backbone | params (M) | epochs | top-1 (%) | train time (s) |',
             '|---|---|---|---|---|---|']
    lines += [f'| {r["model"]} | `{r["backbone"]}` | {r["params_M"]} | {r["epochs"]} | '
              f'{r["top1"]} | {r["train_s"]} |' for r in rows]
    machines = sorted({r['machine'] for r in rows})
    md_path.write_text('\n'.join(lines) + f'\n\nMachine: {"; ".join(machines)}.\n')
    print('\n'.join(lines))
    return rows
