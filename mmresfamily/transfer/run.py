"""The transfer runs: one Runner per pending backbone, rows written as they finish; resumable and
distributed (rank 0 writes)."""
import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ..utils.csv_table import read_csv
from .args import parse_args, template_config
from .backbones import backbone_weights, build_backbone, parse_backbone_spec
from .config import make_configure
from .data import resolve_data
from .report import METRICS, row_key, write_outputs


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

    from ..utils.launch import make_runner, setup_launcher

    template = template_config(args)
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
    rows = [read_csv(csv_path)]
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
