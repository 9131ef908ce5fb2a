"""`python -m mmresfamily` (console script `mmresfamily`): the model table and its weights.

    list [--family F] [--json]     every model: params, GMACs, published top-1, weight sources
    info NAME [--json]             one model: config, sources with hashes and licenses, features
    fetch NAME|URI [...]           download, verify and convert into the caches
"""
import argparse
import json
import sys
from pathlib import Path
from typing import List

from . import zoo

REPO_CONFIGS = Path(__file__).resolve().parents[1] / 'configs'


def configs_using(name: str) -> List[str]:
    """Configs of a source checkout whose backbone loads `mmrf://NAME` (none when installed)."""
    if not REPO_CONFIGS.is_dir():
        return []
    needle = f"'mmrf://{name}'"
    bases = {p.stem for p in (REPO_CONFIGS / '_base_' / 'backbones').glob('*.py')
             if needle in p.read_text()}
    found = []
    for path in sorted(REPO_CONFIGS.rglob('*.py')):
        text = path.read_text()
        if needle in text or any(f'/backbones/{b}.py' in text for b in bases):
            found.append(str(path.relative_to(REPO_CONFIGS.parent)))
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


def cmd_list(args):
    models = [m for m in zoo.MODELS.values() if args.family in (None, m.family)]
    if not models:
        raise SystemExit(f'--family must be one of {", ".join(zoo.families())}; '
                         f'got {args.family!r}')
    rows = [model_row(m) for m in models]
    if args.json:
        print(json.dumps(rows, indent=1))
        return rows
    print('| name | family | params (M) | GMACs | top-1 | weights (top-1) | configs |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        sources = ', '.join(f'{s["uri"]} ({fmt(s["top1"], ".2f")})' for s in r['sources'])
        print(f'| {r["name"]} | {r["family"]} | {fmt(r["params_m"])} | {fmt(r["gmacs"])} | '
              f'{fmt(r["top1"])} | {sources or "none published"} | {len(r["configs"])} |')
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


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m mmresfamily', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    p = commands.add_parser('list', help='every model of the table')
    p.add_argument('--family', help=f'one of {", ".join(zoo.families())}')
    p.add_argument('--json', action='store_true')
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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (KeyError, FileNotFoundError, ValueError) as err:  # our errors say what to do
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(2) from None
