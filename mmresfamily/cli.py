"""`python -m mmresfamily` (console script `mmresfamily`): the model table and its weights.

    list [NAME ...] [--family F] [--json] [--measure [--size N]] [--csv F]
                                   every model: params, GMACs, published top-1, weight sources;
                                   --measure builds each one and adds what it measures
    info NAME [--json]             one model: config, sources with hashes and licenses, features
    fetch NAME|URI [...]           download, verify and convert into the caches
    convert SRC MODEL IN OUT       another codebase's checkpoint -> our layout (+ backbone_cfg)
    export TARGET --format onnx|torchscript|pt2 [--checkpoint CKPT] [--deploy] [--dynamic]
           [--opset N] [--shape H W] [--out PATH] [--cfg-options KEY=VALUE ...]
                                   a backbone (or a whole mmdet detector / mmseg segmentor
                                   config) to a file, run again and compared with eager
                                   (report: <file>.json; a failed check exits 1)
"""
import argparse
import csv
import json
import sys
from pathlib import Path
from typing import List

from . import zoo
from .utils.cli import int_at_least
from .utils.paths import CONFIGS


def configs_using(name: str) -> List[str]:
    """Configs of a source checkout whose backbone loads `mmrf://NAME` (none when installed)."""
    if not CONFIGS.is_dir():
        return []
    needle = f"'mmrf://{name}'"
    bases = {p.stem for p in (CONFIGS / '_base_' / 'backbones').glob('*.py')
             if needle in p.read_text()}
    found = []
    for path in sorted(CONFIGS.rglob('*.py')):
        text = path.read_text()
        if needle in text or any(f'/backbones/{b}.py' in text for b in bases):
            found.append(str(path.relative_to(CONFIGS.parent)))
    return found


def source_row(source: zoo.Source) -> dict:
    return dict(uri=source.uri, file=source.filename, url=source.url, manual=source.manual,
                sha256_prefix=source.sha256_prefix, top1=source.top1, top1_cite=source.top1_cite,
                license=source.license, converter=':'.join(source.convert))


def model_row(model: zoo.Model, with_configs=True) -> dict:
    row = dict(name=model.name, family=model.family, backbone=model.backbone_cfg,
               params_m=model.params_m, gmacs=model.gmacs, top1=model.top1, cite=model.cite,
               sources=[source_row(s) for s in model.sources])
    if with_configs:
        row['configs'] = configs_using(model.name)
    return row


def feature_info(model: zoo.Model):
    import torch

    from .registry import MODELS
    with torch.device('meta'):  # shapes only
        return MODELS.build(model.backbone_cfg).feature_info


def fmt(value, spec=''):
    return '-' if value is None else format(value, spec)


def measure(model: zoo.Model, size: int) -> dict:
    """Build the row's backbone and measure it: params (with a 1000-class head as published),
    GMACs at size x size (mmengine's counter: one multiply-add each) and its outputs."""
    import torch

    from .flops import flop_analyzer
    from .registry import MODELS
    from .testing import params_with_head
    backbone = MODELS.build(model.backbone_cfg).eval()
    x = torch.zeros(1, backbone.in_channels, size, size)
    with torch.no_grad():
        outs = backbone(x)
    # what the backbone hands out is what feature_info says
    assert [o.shape[1] for o in outs] == list(backbone.out_channels), model.name
    analyzer = flop_analyzer(backbone, (x, ))
    return dict(measured_params_m=round(params_with_head(backbone) / 1e6, 2),
                measured_gmacs=round(analyzer.total() / 1e9, 2),
                outputs=' '.join(f'{i["reduction"]}:{i["num_chs"]}'
                                 for i in backbone.feature_info))


def cmd_list(args):
    models = [zoo.get(name) for name in args.names] or list(zoo.MODELS.values())
    models = [m for m in models if args.family in (None, m.family)]
    if not models:
        raise ValueError(f'--family must be one of {", ".join(zoo.families())}; '
                         f'got {args.family!r}')
    rows = [model_row(m) for m in models]
    if args.measure:
        for model, row in zip(models, rows):
            row.update(measure(model, args.size))
    if args.csv:
        columns = [k for k in rows[0] if k not in ('backbone', 'sources', 'configs')]
        with open(args.csv, 'w', newline='') as f:
            writer = csv.DictWriter(f, columns + ['sources'], extrasaction='ignore')
            writer.writeheader()
            writer.writerows(dict(r, sources=' '.join(s['uri'] for s in r['sources']))
                             for r in rows)
    if args.json:
        print(json.dumps(rows, indent=1))
        return rows
    extra = (f' params measured | GMACs at {args.size} measured | outputs (stride:channels) |'
             if args.measure else '')
    print(f'| name | family | params (M) | GMACs | top-1 | weights (top-1) | configs |{extra}')
    print('|---' * (7 + 3 * args.measure) + '|')
    for r in rows:
        sources = ', '.join(f'{s["uri"]} ({fmt(s["top1"], ".2f")})' for s in r['sources'])
        line = (f'| {r["name"]} | {r["family"]} | {fmt(r["params_m"])} | {fmt(r["gmacs"])} | '
                f'{fmt(r["top1"])} | {sources or "none published"} | {len(r["configs"])} |')
        if args.measure:
            line += f' {r["measured_params_m"]} | {r["measured_gmacs"]} | {r["outputs"]} |'
        print(line, flush=True)
    return rows


def cmd_info(args):
    model = zoo.get(args.name)
    row = model_row(model)
    row['feature_info'] = feature_info(model)
    if args.json:
        print(json.dumps(row, indent=1))
        return row
    print(f'{model.name}: {model.family}\n  backbone: {model.backbone_cfg}')
    print(f'  published: params {fmt(model.params_m)} M, GMACs {fmt(model.gmacs)}, top-1 '
          f'{fmt(model.top1)} ({model.cite})')
    print('  features: ' + ', '.join(f'{i["module"]} {i["num_chs"]}ch /{i["reduction"]}'
                                     for i in row['feature_info']))
    print(f'  load it: init_cfg=dict(type="Pretrained", checkpoint="mmrf://{model.name}")'
          if model.sources else '  no published weights')
    for s in row['sources']:
        where = s['url'] or f'by hand from {s["manual"]}'
        print(f'  - {s["uri"]}: {s["file"]} from {where}; sha256 {s["sha256_prefix"] or "-"}'
              f'; top-1 {fmt(s["top1"])} ({s["top1_cite"]}); license {s["license"]}')
    for config in row['configs']:
        print(f'  config: {config}')
    return row


def cmd_fetch(args):
    from .weights import fetch
    for target in args.targets:
        for path in fetch(target):
            print(f'{target}: {path}')


# sources whose checkpoints are mmengine/mmcv runner checkpoints (numpy scalars, HistoryBuffers)
RUNNER_SOURCES = ('mmdet', 'mmseg', 'mmpretrain', 'official')
CONVERT_HELP = """SRC and the MODEL names it takes (full lists: mmresfamily/converters/*.py):

    timm         timm model names (resnet50d, resnest50d, res2net50_26w_4s, densenet121, dpn68, ...)
    torchvision  resnet18..152, resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, densenet121..
    mmdet, mmseg, mmpretrain
                 resnet50[_caffe], resnet50_v1c, resnet50_v1d, resnext50_32x4d, resnest50,
                 res2net50_w26_s4, densenet121 (mmpretrain); a whole detector / segmentor /
                 classifier checkpoint keeps its `backbone.*` keys and drops the rest
    official     resnest50, res2net50_26w_4s, res2net50_v1b_26w_4s, res2next50, hardnet68,
                 hardnet39ds, rednet50, ... (the authors' released layouts)

Writes {'state_dict': ..., 'meta': {'backbone_cfg': ..., 'source': ..., 'dropped_keys': ...}}:
building `backbone_cfg` and loading `state_dict` strictly reproduces the source's features.
Weights that do not fit the backbone are refused, naming the keys and what they would fit."""


def cmd_convert(args):
    import torch

    from .converters import convert
    from .utils import load_checkpoint_file
    error = args.parser.error
    if not args.input.is_file():
        error(f'input checkpoint not found: {args.input}')
    if args.output.is_dir():
        error(f'output {args.output} is a directory; give a file name, e.g. '
              f'{args.output}/out.pth')
    parent = next(p for p in args.output.parents if p.exists())
    if not parent.is_dir():
        error(f'output {args.output}: {parent} is a file, not a directory')
    try:
        # weights only: a checkpoint from elsewhere never gets to run code here; runner
        # checkpoints get the allow-list of their harmless extra types (the rest is refused)
        checkpoint = load_checkpoint_file(args.input,
                                          runner_checkpoint=args.source in RUNNER_SOURCES)
        state_dict, cfg, dropped = convert(args.source, args.model, checkpoint)
    except ValueError as err:  # unknown model names, weights that do not fit, unreadable files
        error(str(err))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': state_dict,
                'meta': {'backbone_cfg': cfg, 'source': f'{args.source}:{args.model}',
                         'dropped_keys': dropped}}, args.output)
    print(f'{args.output}: {len(state_dict)} tensors for {cfg}; dropped {len(dropped)} '
          f'keys (classifier head / non-backbone)')
    return args.output


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m mmresfamily', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('list', help='every model of the table')
    p.add_argument('names', nargs='*', metavar='NAME', help='only these rows')
    p.add_argument('--family', help=f'one of {", ".join(zoo.families())}')
    p.add_argument('--json', action='store_true')
    p.add_argument('--measure', action='store_true',
                   help='build every model and add measured params, GMACs and outputs')
    p.add_argument('--size', type=int_at_least(32, 'five stride-2 reductions'), default=224,
                   help='input resolution of the measured GMACs (default 224)')
    p.add_argument('--csv', type=Path, help='also write the table as CSV')
    p.set_defaults(run=cmd_list)
    p = commands.add_parser('info', help='one model of the table')
    p.add_argument('name')
    p.add_argument('--json', action='store_true')
    p.set_defaults(run=cmd_info)
    p = commands.add_parser('fetch', help='download, verify and convert weights into the caches')
    p.add_argument('targets', nargs='+', metavar='NAME|URI',
                   help='a table name (its default source) or timm:// official:// mmrf:// '
                        'torchvision:// URI')
    p.set_defaults(run=cmd_fetch)
    from .converters import CONVERTERS, load_all
    load_all()
    p = commands.add_parser('convert', help="another codebase's checkpoint -> our layout",
                            description=CONVERT_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('source', choices=sorted(CONVERTERS), help='layout of the input')
    p.add_argument('model', help='model name in the source layout, e.g. resnet50d (see above)')
    p.add_argument('input', type=Path)
    p.add_argument('output', type=Path)
    p.set_defaults(run=cmd_convert, parser=p)
    from .export.tool import add_parser as add_export_parser
    add_export_parser(commands, int_at_least)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (KeyError, FileNotFoundError, ValueError) as err:  # our errors say what to do
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(2) from None
