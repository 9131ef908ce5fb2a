#!/usr/bin/env python
"""int8 post-training quantisation (PT2E, x86 Inductor): accuracy and speed.

    python tools/quantize.py accuracy [--configs C ...] [--work-dir work_dirs/fashion_mnist]
                                      [--out docs/quantization/fashion_mnist]
                                      [--kernels reference|inductor]
    python tools/quantize.py speed [--model resnet50] [--batch 8] [--size 224] [--repeats 10]
                                   [--out docs/quantization/speed]

accuracy: int8 vs fp32 top-1 of the Fashion-MNIST classifier of every family (the latest
checkpoint `tools/pretrain_fashion_mnist.py --work-dir DIR` trained for each config), calibrated
on 1,000 real training images, evaluated on the 10,000 test images; OUT.csv and OUT.md
(tests/test_quantize.py checks that Inductor's int8 kernels compute what the reference graph
says).
speed: img/s of a model-table backbone in fp32 eager, fp32 Inductor and int8 Inductor; OUT.csv
and OUT.md. See mmresfamily/quantize.py.
"""
import argparse
from pathlib import Path

from mmresfamily import quantize, zoo
from mmresfamily.pretrain.table import classifier_configs
from mmresfamily.utils.cli import int_at_least
from mmresfamily.utils.csv_table import write_csv
from mmresfamily.utils.paths import REPO_ROOT


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('accuracy')
    p.add_argument('--configs', nargs='+', type=Path, default=classifier_configs())
    p.add_argument('--work-dir', type=Path, default=REPO_ROOT / 'work_dirs/fashion_mnist')
    p.add_argument('--out', type=Path, default=REPO_ROOT / 'docs/quantization/fashion_mnist')
    p.add_argument('--kernels', choices=quantize.KERNELS, default='reference',
                   help="the int8 model run as its converted q/dq graph ('reference', eager) or "
                   "as Inductor's oneDNN int8 kernels ('inductor', minutes of compilation each)")
    p = commands.add_parser('speed')
    p.add_argument('--model', default='resnet50', help='a model-table name')
    p.add_argument('--batch', type=int_at_least(1), default=8)
    p.add_argument('--size', type=int_at_least(32), default=224)
    p.add_argument('--repeats', type=int_at_least(1), default=10)
    p.add_argument('--out', type=Path, default=REPO_ROOT / 'docs/quantization/speed')
    args = parser.parse_args(argv)
    if args.command == 'accuracy':
        return quantize.fashion_mnist_table(args.configs, args.work_dir, args.out, args.kernels)
    model = zoo.get(args.model)
    rows = quantize.speed_rows(dict(model.backbone_cfg, out_indices=(3, )), args.batch,
                               args.size, args.repeats)
    write_csv(args.out.with_suffix('.csv'), rows)
    text = (f'{args.model}, batch {args.batch}, {args.size}x{args.size}, median of '
            f'{args.repeats}:\n\n' + quantize.speed_markdown(rows))
    args.out.with_suffix('.md').write_text(text)
    print(text)
    return rows


if __name__ == '__main__':
    main()
