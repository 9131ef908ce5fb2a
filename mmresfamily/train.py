"""Train a detector (mmdet), segmentor (mmseg) or classifier (mmpretrain) from a config; the
config's default_scope picks the toolbox. Flags follow mmdet's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
    python -m mmresfamily.train ...                 (the same)

Distributed: tools/dist_train.sh (torchrun) or tools/slurm_train.sh; works on CPU too (gloo).
"""
import argparse
import os.path as osp

from .utils.launch import add_runner_args, exit_on_user_error, make_runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (CUDA only)')
    add_runner_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """Train; returns the mmengine Runner."""
    args = parse_args(argv)
    import torch

    def configure(cfg):
        if args.amp:
            if not torch.cuda.is_available():
                raise SystemExit('--amp needs a CUDA device (mmengine AmpOptimWrapper refuses '
                                 'CPU)')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        if args.resume == 'auto':
            cfg.resume, cfg.load_from = True, None
        elif args.resume is not None:
            if not osp.isfile(args.resume):
                raise SystemExit(f'--resume: checkpoint not found: {args.resume}')
            cfg.resume, cfg.load_from = True, args.resume

    with exit_on_user_error():  # a bad config / flag / file: its message, not a traceback
        runner = make_runner(args, configure)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
