"""`python -m mmresfamily export`: build a backbone, load its weights, export, check the file.

The file is run again (onnxruntime for ONNX, the loaded module for TorchScript / .pt2) at inputs
not used at export -- other batch sizes and image sizes when the export is dynamic (TorchScript
traces record sizes, so always), other data at the exported shape when static -- and compared
with the eager model output by output: max |a - b| / max |b| <= rtol. A JSON report is written
beside the file (`<file>.json`); a failed check exits non-zero naming the output.
"""
import json
from pathlib import Path
from typing import Tuple

import torch

from .. import zoo
from ..weights import sha256_of
from .formats import (
    FORMATS,
    ExportError,
    as_list,
    compare_outputs,
    export_file,
    load_runner,
    output_names,
)

BATCH = 2


def resolve_target(target: str) -> Tuple[str, dict]:
    """(name, backbone config) of a model-table name or a config file whose `model` is a
    backbone dict."""
    path = Path(target)
    if path.suffix != '.py':
        model = zoo.get(target)  # KeyError with close names
        return model.name, model.backbone_cfg
    if not path.is_file():
        raise FileNotFoundError(f'config file not found: {target}')
    from mmengine.config import Config
    cfg = Config.fromfile(str(path)).get('model')
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'{target} has no `model` dict with a type; give a config whose model '
                         f"is a backbone, e.g. model = dict(type='mmresfamily.ResNeSt', depth=50)")
    cfg = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    if not is_backbone_type(cfg['type']):
        inside = (f" (its backbone: {cfg['backbone'].get('type')})"
                  if isinstance(cfg.get('backbone'), dict) else '')
        raise ValueError(f"{target}: model type {cfg['type']!r}{inside} is not an mmresfamily "
                         f'backbone; whole detectors and segmentors are not exported yet: '
                         f'export the backbone with a config whose `model` is its dict')
    return path.stem, cfg


def is_backbone_type(type_name) -> bool:
    from ..models.backbones import BaseBackbone
    from ..registry import MODELS
    cls = type_name if isinstance(type_name, type) else MODELS.get(type_name)
    return isinstance(cls, type) and issubclass(cls, BaseBackbone)


def check_inputs(example_shape, dynamic: bool, fmt: str):
    """The inputs the file is checked at: other batch and sizes where the file allows them."""
    n, c, h, w = example_shape
    if not dynamic and fmt != 'torchscript':
        return [(n, c, h, w)]  # a static file: other data, same shape
    return [(n + 1, c, h + 16, w + 32), (1, c, w, h) if w != h else (1, c, h + 32, w)]


def export_target(target: str, fmt: str, checkpoint=None, deploy=False, dynamic=False,
                  opset=None, shape=(224, 224), out=None, rtol=1e-4) -> dict:
    """Build, load, (deploy,) export, check; write the report. Returns the report: its `ok`
    says whether every output at every check input is within `rtol`."""
    from ..registry import MODELS
    name, cfg = resolve_target(target)
    model = MODELS.build(cfg)
    if model.loads_pretrained:  # the config's own init_cfg=Pretrained (else: torch's init)
        model.init_weights()
    if checkpoint:
        from ..utils.pretrained import load_pretrained
        load_pretrained(model, str(checkpoint))
    model.eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.randn((BATCH, model.in_channels, *shape), generator=generator)
    if deploy:
        from ..deploy import optimize_for_inference
        # the memory layout is not part of an exported graph: BN folding is what deploy adds
        model = optimize_for_inference(model, example, channels_last=False)
    path = Path(out) if out else Path(f'{name}{FORMATS[fmt]}')
    path.parent.mkdir(parents=True, exist_ok=True)
    used = export_file(fmt, model, example, path, dynamic=dynamic, opset=opset)
    run, names = load_runner(fmt, path), output_names(model)
    checks = []
    for shape_ in check_inputs(tuple(example.shape), dynamic, fmt):
        x = torch.randn(shape_, generator=generator)
        with torch.no_grad():
            expected = as_list(model(x))
        checks.append(dict(input_shape=list(shape_),
                           outputs=compare_outputs(as_list(run(x)), expected, names, rtol)))
    report = dict(target=target, backbone_cfg=cfg, checkpoint=str(checkpoint) if checkpoint
                  else None, deploy=deploy, format=fmt, dynamic=dynamic, **used,
                  export_input_shape=list(example.shape), outputs=names, rtol=rtol,
                  checks=checks, ok=all(o['ok'] for c in checks for o in c['outputs']),
                  file=str(path), bytes=path.stat().st_size, sha256=sha256_of(path),
                  torch=torch.__version__)
    if fmt == 'onnx':
        import onnxruntime
        report['onnxruntime'] = onnxruntime.__version__
    Path(f'{path}.json').write_text(json.dumps(report, indent=1, default=str) + '\n')
    return report


def failures(report: dict):
    """'output NAME at input NxCxHxW: relative error E > rtol' for each failed output."""
    for check in report['checks']:
        shape = 'x'.join(map(str, check['input_shape']))
        for o in check['outputs']:
            if not o['ok']:
                yield (f'output {o["name"]} at input {shape}: relative error '
                       f'{o["relative_error"]:.2e} > {report["rtol"]:g} (shape {o["got_shape"]} '
                       f'vs eager {o["shape"]})')


def cmd_export(args):
    """The CLI command: exit 0 when every check passes, 1 naming the failed outputs, 2 when
    the path cannot export this model."""
    import sys
    try:
        report = export_target(args.target, args.format, args.checkpoint, args.deploy,
                               args.dynamic, args.opset, tuple(args.shape), args.out, args.rtol)
    except ExportError as err:
        print(f'error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
    worst = max(o['relative_error'] for c in report['checks'] for o in c['outputs'])
    print(f'{report["file"]}: {report["format"]} ({report["exporter"]}'
          f'{", opset " + str(report["opset"]) if "opset" in report else ""}), sha256 '
          f'{report["sha256"][:16]}..., report {report["file"]}.json; parity at '
          f'{len(report["checks"])} inputs: max relative error {worst:.1e}')
    failed = list(failures(report))
    if failed:
        print('parity check failed:\n  ' + '\n  '.join(failed), file=sys.stderr)
        raise SystemExit(1)
    return report


def add_parser(commands, int_at_least):
    import argparse
    p = commands.add_parser('export', help='a backbone to ONNX / TorchScript / .pt2, checked',
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('target', help='a model-table name (python -m mmresfamily list) or a config '
                                  'file whose `model` is a backbone dict')
    p.add_argument('--format', choices=list(FORMATS), required=True)
    p.add_argument('--checkpoint', help='weights to load: a path or a URI (mmrf://NAME, '
                                        'timm://..., torchvision://...)')
    p.add_argument('--deploy', action='store_true',
                   help='fold BatchNorm into the convs first (optimize_for_inference)')
    p.add_argument('--dynamic', action='store_true',
                   help='batch, height and width dynamic (default: the shape of --shape, '
                        'batch 2)')
    p.add_argument('--opset', type=int_at_least(7, 'ONNX opset'),
                   help='ONNX opset (default: torch\'s; deformable convs need 19)')
    p.add_argument('--shape', type=int_at_least(1), nargs=2, default=[224, 224],
                   metavar=('H', 'W'), help='input size at export (default 224 224)')
    p.add_argument('--out', type=Path, help='output file (default: TARGET.onnx/.pt/.pt2 here)')
    p.add_argument('--rtol', type=float, default=1e-4,
                   help='parity bound: max|a-b| / max|b| per output (default 1e-4)')
    p.set_defaults(run=cmd_export)
    return p
