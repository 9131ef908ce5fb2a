#!/usr/bin/env python
"""Build every registered backbone variant and print its size and outputs.

    python tools/summary.py [--size 224] [--families ResNet DenseNet ...] [--first-only]
                            [--csv out.csv]

Columns: variant, params (M, backbone only and with a 1000-class head), GMACs at SIZE x SIZE
(backbone, counted by mmengine.analysis), and the (stride, channels) of each output stage.
Variants are the keys of each family's arch table: `depth=` for the ResNet-style families,
`arch=` for those that name their variants (DenseNet, DPN, HarDNet). --first-only builds the
first variant of each family (a quick check that every family builds).
"""
import argparse
import csv
import inspect
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmresfamily.registry import MODELS  # noqa: E402
from mmresfamily.testing import params_with_head  # noqa: E402
from mmresfamily.utils.cli import int_at_least  # noqa: E402

FAMILY_DEFAULTS = {  # extra arguments that name the usual variant of a family
    'ResNeXt': dict(groups=32, base_width=4),
}


def variant_argument(cls) -> str:
    """The constructor argument that picks a row of the family's arch table."""
    return 'arch' if 'arch' in inspect.signature(cls.__init__).parameters else 'depth'


def variants(families, first_only=False):
    for family in families:
        cls = MODELS.get(family)
        keys = list(cls.arch_settings)
        for key in keys[:1] if first_only else keys:
            yield f'{family}-{key}', dict(type=f'mmresfamily.{family}',
                                          **{variant_argument(cls): key},
                                          **FAMILY_DEFAULTS.get(family, {}))


def gmacs(model, size):
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(model, (torch.zeros(1, model.in_channels, size, size), ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer.total() / 1e9  # fvcore-style "flops" count one multiply-add


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    all_families = sorted(n for n, c in MODELS.module_dict.items()
                          if hasattr(c, 'arch_settings'))
    parser.add_argument('--families', nargs='+', default=all_families, choices=all_families)
    parser.add_argument('--size', type=int_at_least(32, 'five stride-2 reductions'),
                        default=224, help='input resolution for GMACs')
    parser.add_argument('--first-only', action='store_true',
                        help="only the first variant of each family's arch table")
    parser.add_argument('--csv', type=Path, help='also write the table as CSV')
    args = parser.parse_args(argv)

    header = ['variant', 'params_M', 'params_M_head1000', 'GMACs', 'outputs (stride:channels)']
    rows = []
    print(f'| {" | ".join(header)} |\n|{"---|" * len(header)}')
    start = time.time()
    for name, cfg in variants(args.families, args.first_only):
        model = MODELS.build(cfg).eval()
        with torch.no_grad():
            outs = model(torch.zeros(1, model.in_channels, 64, 64))
        # what the backbone hands out is what feature_info says
        assert [o.shape[1] for o in outs] == list(model.out_channels), name
        row = [name, f'{sum(p.numel() for p in model.parameters()) / 1e6:.2f}',
               f'{params_with_head(model) / 1e6:.2f}', f'{gmacs(model, args.size):.2f}',
               ' '.join(f'{i["reduction"]}:{i["num_chs"]}' for i in model.feature_info)]
        rows.append(row)
        print(f'| {" | ".join(row)} |', flush=True)
    print(f'\n{len(rows)} variants built in {time.time() - start:.0f}s '
          f'(GMACs at {args.size}x{args.size}).')
    if args.csv:
        with open(args.csv, 'w', newline='') as f:
            csv.writer(f).writerows([header] + rows)
    return rows


if __name__ == '__main__':
    main()
