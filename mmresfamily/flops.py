"""Parameters and FLOPs of a whole detector, segmentor or classifier config (`tools/get_flops.py`).

    python tools/get_flops.py CONFIG [--shape H W] [--cfg-options k=v ...] [--csv OUT]

Builds `cfg.model` in the config's toolbox (its default_scope) and counts, with mmengine.analysis
(FlopAnalyzer: one multiply-add = one flop, as mmdet/mmseg/mmpretrain report), the network's
tensor-mode forward on one zero image of H x W: the classifier's logits, the segmentor's
decode-head logits, the detector's raw head outputs (two-stage detectors include the RPN
proposals' RoI heads, as mmdet's own get_flops does). Default shapes follow each toolbox's
get_flops: mmpretrain 224x224, mmdet 800x1333 (HxW), mmseg 512x1024. Prints the total and a
breakdown by top-level module (backbone / neck / heads).
"""
import argparse
import csv
from pathlib import Path

import torch
import torch.nn as nn

DEFAULT_SHAPES = {'mmpretrain': (224, 224), 'mmdet': (800, 1333), 'mmseg': (512, 1024)}


def flop_analyzer(model: nn.Module, inputs: tuple):
    """mmengine's FlopAnalyzer for `model(*inputs)`, without its per-op warnings (`total()`
    counts one multiply-add as one flop, as the toolboxes report)."""
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer


class TensorForward(nn.Module):
    """`model(x)` -> the toolbox model's `mode='tensor'` forward (what FlopAnalyzer traces)."""

    def __init__(self, model, scope, shape):
        super().__init__()
        self.model, self.data_samples = model, None
        if scope == 'mmdet':  # detector heads read the image shape from the data samples
            from mmdet.structures import DetDataSample
            meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                        batch_input_shape=shape, scale_factor=(1., 1.))
            self.data_samples = [DetDataSample(metainfo=meta)]

    def forward(self, x):
        return self.model(x, self.data_samples, mode='tensor')


def build_model(cfg):
    from mmengine.registry import MODELS, init_default_scope

    import mmresfamily  # noqa: F401  (registers our backbones)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)  # the root registry switches to the default scope's
    return model.eval()


def count(cfg, shape):
    """(total flops, params, [(module, flops, params)]) of the config's model at `shape`."""
    model = build_model(cfg)
    wrapped = TensorForward(model, cfg.default_scope, tuple(shape)).eval()
    analyzer = flop_analyzer(wrapped, (torch.zeros(1, 3, *shape), ))
    by_module = analyzer.by_module()
    parts = [(name, by_module.get(f'model.{name}', 0), sum(p.numel() for p in child.parameters()))
             for name, child in model.named_children()
             if name != 'data_preprocessor']
    params = sum(p.numel() for p in model.parameters())
    return analyzer.total(), params, parts


def main(argv=None):
    from .utils.launch import CfgOptionsAction, exit_on_user_error, load_config
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: by toolbox, see above)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    parser.add_argument('--csv', type=Path, help='also write the breakdown as CSV')
    args = parser.parse_args(argv)
    with exit_on_user_error():
        cfg = load_config(args.config, args.cfg_options)
    shape = args.shape or DEFAULT_SHAPES[cfg.default_scope]
    if min(shape) < 32:
        parser.error(f'--shape must be at least 32x32 (four stride-2 stages); got {shape}')
    total, params, parts = count(cfg, shape)
    print(f'{args.config}\ninput 1x3x{shape[0]}x{shape[1]} ({cfg.default_scope}): '
          f'{total / 1e9:.2f} GFLOPs (multiply-adds), {params / 1e6:.2f} M params')
    print('| module | GFLOPs | params (M) |\n|---|---|---|')
    for name, flops, n in parts:
        print(f'| {name} | {flops / 1e9:.2f} | {n / 1e6:.2f} |')
    if args.csv:
        with open(args.csv, 'w', newline='') as f:
            csv.writer(f).writerows([('module', 'flops', 'params')] + parts +
                                    [('total', total, params)])
    return total, params, parts
