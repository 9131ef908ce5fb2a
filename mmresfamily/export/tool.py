"""`python -m mmresfamily export`: build a backbone (or a whole mmdet detector / mmseg
segmentor from its config), load its weights, export, check the file.

The file is run again (onnxruntime for ONNX, the loaded module for TorchScript / .pt2) at inputs
not used at export -- other batch sizes and image sizes when the export is dynamic (TorchScript
traces record sizes, so always), other data at the exported shape when static -- and compared
with the eager model output by output: max |a - b| / max |b| <= rtol. A JSON report is written
beside the file (`<file>.json`); a failed check exits non-zero naming the output.

Whole models (a config whose `model` is a detector or segmentor) export their tensor-mode
forward without post-processing: a segmentor's logits resized to the input size, a detector's
raw head outputs (a two-stage detector: backbone + neck + RPN head; its RoI head needs the
proposals of NMS). Weights files of the config are not loaded (random weights unless
--checkpoint gives the whole model's), SyncBN becomes BN; --deploy is for backbones only.
Adaptive pooling to sizes other than 1x1 (PSPNet's, UPerNet's pyramid pooling) exports to ONNX
at static sizes only.
"""
import json
from pathlib import Path
from typing import Optional, Tuple

import torch

from .. import zoo
from ..weights import sha256_of
from .formats import (
    FORMATS,
    ExportError,
    as_list,
    compare_outputs,
    export_file,
    first_line,
    load_runner,
    output_names,
)
from .whole import build_whole, is_backbone_type, read_config

BATCH = 2


def resolve_target(target: str, cfg_options=None) -> Tuple[str, dict, Optional[object]]:
    """(name, backbone config, whole-model config or None) of a model-table name or a config
    file whose `model` is a backbone dict or an mmdet detector / mmseg segmentor."""
    path = Path(target)
    if path.suffix != '.py':
        if cfg_options:
            raise ValueError(f'--cfg-options changes config files; {target} is a model-table '
                             f'name')
        model = zoo.get(target)  # KeyError with close names
        return model.name, model.backbone_cfg, None
    cfg = read_config(path, cfg_options)
    model = cfg.model.to_dict()
    if is_backbone_type(model['type']):
        return path.stem, model, None
    return path.stem, model.get('backbone'), cfg


def build_target(target: str, checkpoint=None, deploy=False, shape=(224, 224),
                 cfg_options=None):
    """(name, backbone config, whole-model report entry or None, eval model)."""
    from ..registry import MODELS
    name, cfg, whole_cfg = resolve_target(target, cfg_options)
    if whole_cfg is not None:
        if deploy:
            raise ExportError('--deploy folds BatchNorm in backbones only; export the whole '
                              f'model of {target} without it')
        model = build_whole(whole_cfg, shape, checkpoint)
        whole = dict(type=whole_cfg.model.type, scope=whole_cfg.default_scope, part=model.part)
        return name, cfg, whole, model
    model = MODELS.build(cfg)
    if model.loads_pretrained:  # the config's own init_cfg=Pretrained (else: torch's init)
        model.init_weights()
    if checkpoint:
        from ..utils.pretrained import load_pretrained
        load_pretrained(model, str(checkpoint))
    return name, cfg, None, model.eval()


def check_inputs(example_shape, dynamic: bool, fmt: str):
    """The inputs the file is checked at: other batch and sizes where the file allows them."""
    n, c, h, w = example_shape
    if not dynamic and fmt != 'torchscript':
        return [(n, c, h, w)]  # a static file: other data, same shape
    return [(n + 1, c, h + 16, w + 32), (1, c, w, h) if w != h else (1, c, h + 32, w)]


def export_target(target: str, fmt: str, checkpoint=None, deploy=False, dynamic=False,
                  opset=None, shape=(224, 224), out=None, rtol=1e-4, cfg_options=None) -> dict:
    """Build, load, (deploy,) export, check; write the report. Returns the report: its `ok`
    says whether every output at every check input is within `rtol`."""
    name, cfg, whole, model = build_target(target, checkpoint, deploy, shape, cfg_options)
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
        try:
            got, error = as_list(run(x)), None
        except Exception as err:  # noqa: BLE001  e.g. sizes fixed inside a "dynamic" file
            got, error = [], first_line(err)
        checks.append(dict(input_shape=list(shape_), error=error,
                           outputs=compare_outputs(got, expected, names, rtol)))
    report = dict(target=target, cfg_options=cfg_options, whole_model=whole, backbone_cfg=cfg,
                  checkpoint=str(checkpoint) if checkpoint
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
        if check.get('error'):
            yield f'the file did not run at input {shape}: {check["error"]}'
            continue
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
                               args.dynamic, args.opset, tuple(args.shape), args.out, args.rtol,
                               args.cfg_options)
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

    from ..utils.launch import CfgOptionsAction
    p = commands.add_parser('export',
                            help='a backbone or whole model to ONNX / TorchScript / .pt2, checked',
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('target', help='a model-table name (python -m mmresfamily list) or a config '
                                  'file whose `model` is a backbone dict, an mmdet detector or '
                                  'an mmseg segmentor (whole models: see above)')
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
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                   help="override entries of a config file target, e.g. model.backbone.depth=18")
    p.add_argument('--rtol', type=float, default=1e-4,
                   help='parity bound: max|a-b| / max|b| per output (default 1e-4)')
    p.set_defaults(run=cmd_export)
    return p
