"""`models`: throughput, memory, params and GMACs of every family vs timm / mmdet."""
import argparse
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn as nn

from .. import zoo
from ..deploy import fold_batchnorm, optimize_for_inference
from ..flops import flop_analyzer
from ..registry import MODELS
from ..testing import computes_dynamic_kernels, default_init_calibrated_, randomize_
from ..utils.cli import int_at_least
from .report import COLUMNS, fmt, machine_description, models_markdown, plot, read_rows, write_rows
from .timing import MODES, check_device, forward_args, in_child, peak_extra_bytes, timed_round_robin

HELP = 'throughput, memory, params and GMACs of every family vs timm/mmdet'

# variant -> (model-table row [+ arguments that differ], {implementation: the same architecture
# there}); a reference is listed only where tests/test_timm_equivalence.py or
# test_mmdet_equivalence.py prove the match (or, for DenseNet/DPN, tests/test_dense_families.py).
# mmdet's backbones default to norm_eval=True (BN frozen in training); build_impl sets False, as
# ours and timm train.
VARIANTS = {
    'ResNet-50': ('resnet50', dict(timm='resnet50', mmdet=dict(type='ResNet', depth=50))),
    'ResNetV1c-50': ('resnet50_v1c', dict(timm='resnet50c')),
    'ResNetV1d-50': ('resnet50_v1d',
                     dict(timm='resnet50d', mmdet=dict(type='ResNetV1d', depth=50))),
    'ResNeXt-50-32x4d': ('resnext50_32x4d',
                         dict(timm='resnext50_32x4d',
                              mmdet=dict(type='ResNeXt', depth=50, groups=32, base_width=4))),
    'ResNeSt-50': ('resnest50', dict(timm='resnest50d', mmdet=dict(
        type='ResNeSt', depth=50, stem_channels=64, radix=2, reduction_factor=4,
        avg_down_stride=True))),
    'Res2Net-50-26w4s': ('res2net50_v1b', dict(timm='res2net50d')),
    # mmdet pools Res2Net's first-block scales differently: a variant of its own
    'Res2Net-50-26w4s-mmdet': (('res2net50_v1b', dict(stride1_pool=False)),
                               dict(mmdet=dict(type='Res2Net', depth=50, scales=4,
                                               base_width=26))),
    'PreResNet-50': ('preresnet50', dict(timm='resnetv2_50')),
    'DenseNet-121': ('densenet121', dict(timm='densenet121')),
    'DPN-92': ('dpn92', dict(timm='dpn92')),
    'HarDNet-68': ('hardnet68', {}),
    'RedNet-50': ('rednet50', {}),
    'DCDC-ResNet-50': ('dcdc_resnet50', {}),
    'ResNet-50-highway': ('resnet50_highway', {}),
}


def our_cfg(variant) -> dict:
    """The variant's backbone config: its model-table row, with the arguments it changes."""
    row, changes = VARIANTS[variant][0], {}
    if isinstance(row, tuple):
        row, changes = row
    return dict(zoo.get(row).backbone_cfg, **changes)


DEPLOY_IMPLS = {'fold_bn': 'ours+fold_bn', 'deploy': 'ours+deploy',
                'deploy_compile': 'ours+deploy_compile', 'with_cp': 'ours+with_cp',
                'again': 'ours+again', 'onnxruntime': 'ours+onnxruntime'}


class TimmFeatures(nn.Module):
    """A timm classifier's feature extractor (`forward_features`: the backbone, no head)."""

    def __init__(self, name):
        super().__init__()
        import timm
        self.model = timm.create_model(name, pretrained=False, num_classes=0)

    def forward(self, x):
        return self.model.forward_features(x)


class OnnxRuntimeModel(nn.Module):
    """An eager backbone exported to ONNX (static benchmark shape) and run by onnxruntime's CPU
    provider with torch's thread count; `source` keeps the eager model (parameters, GMACs)."""

    def __init__(self, source: nn.Module, input_shape):
        super().__init__()
        import tempfile

        import onnxruntime

        from ..export.formats import export_onnx
        self.source = source.eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = f'{tmp}/model.onnx'
            export_onnx(self.source, torch.randn(input_shape), path, dynamic=False)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            self.session = onnxruntime.InferenceSession(path, options,
                                                        providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x):
        return self.session.run(None, {self.input_name: x.detach().cpu().numpy()})


def build_impl(variant, impl, input_shape, device):
    """(model, trainable) for one implementation of a variant, weights randomised alike.

    `input_shape`, `device`: the benchmark input's, what the compiled deploy row is compiled for
    (the others are moved to the device by `Runner`).
    """
    ours_cfg, refs = our_cfg(variant), VARIANTS[variant][1]
    if impl == 'timm':
        model = TimmFeatures(refs['timm'])
    elif impl == 'mmdet':
        import mmdet.models.backbones as mmdet_backbones
        cfg = dict(refs['mmdet'])
        model = getattr(mmdet_backbones, cfg.pop('type'))(**cfg, norm_eval=False)
    elif impl == DEPLOY_IMPLS['with_cp']:
        model = MODELS.build(dict(ours_cfg, with_cp=True))
    else:
        model = MODELS.build(ours_cfg)
    if computes_dynamic_kernels(model):  # randomize_'s weights overflow them: timing NaNs
        default_init_calibrated_(model, seed=0)
    else:
        randomize_(model, seed=0)
    if impl == DEPLOY_IMPLS['fold_bn']:
        return fold_batchnorm(model, torch.randn(1, 3, 64, 64)), False
    if impl == DEPLOY_IMPLS['deploy']:
        return optimize_for_inference(model, torch.randn(1, 3, 64, 64)), False
    if impl == DEPLOY_IMPLS['onnxruntime']:
        return OnnxRuntimeModel(model, input_shape), False
    if impl == DEPLOY_IMPLS['deploy_compile']:
        return optimize_for_inference(model.to(device), torch.randn(input_shape, device=device),
                                      compile=True), False
    return model, True


def implementations(variant, args):
    impls = ['ours'] + list(VARIANTS[variant][1])
    for option in DEPLOY_IMPLS:
        if getattr(args, option):
            impls.append(DEPLOY_IMPLS[option])
    return impls


def input_shape(args):
    return (args.batch, 3, args.size, args.size)


class Runner:
    """Runs one implementation on the benchmark input: forward, or one training step."""

    def __init__(self, model, args, device):
        self.model = model.to(device)
        self.x = torch.randn(input_shape(args), device=device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16
                         else nullcontext())

    def forward(self):
        self.model.eval()
        with torch.no_grad(), self.autocast:
            self.model(self.x)

    def train_step(self):
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        with self.autocast:
            outs = self.model(self.x)
            # the last stage only: timm's forward_features returns just that, and a loss on every
            # returned stage would hold extra gradient buffers on the multi-output backbones
            last = outs[-1] if isinstance(outs, (tuple, list)) else outs
            loss = last.float().mean()
        loss.backward()

    def run(self, mode):
        return self.forward() if mode == 'forward' else self.train_step()


def gmacs_per_image(model, size):
    if isinstance(model, OnnxRuntimeModel):
        model = model.source
    model.eval()  # not chained: mmdet's train() override returns None
    analyzer = flop_analyzer(model, (torch.zeros(1, 3, size, size), ))
    # a compiled deploy model (nn.Module.compile) is counted on the eager module it compiled:
    # jit.trace refuses dynamo-optimised calls
    compiled, model._compiled_call_impl = getattr(model, '_compiled_call_impl', None), None
    try:
        return analyzer.total() / 1e9  # mmengine counts one multiply-add as one flop
    finally:
        model._compiled_call_impl = compiled


CHILD_OPTIONS = ('batch', 'size', 'device', 'channels_last', 'bf16', 'threads')


def add_arguments(parser):
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), metavar='VARIANT',
                        help=f'default: all of {", ".join(VARIANTS)}')
    parser.add_argument('--batch', type=int_at_least(1), default=8)
    parser.add_argument('--size', type=int_at_least(32, 'five stride-2 reductions'), default=224,
                        help='input height = width')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--bf16', action='store_true', help='bf16 autocast (meant for CUDA)')
    parser.add_argument('--fold-bn', action='store_true', help='add ours+fold_bn (forward)')
    parser.add_argument('--deploy', action='store_true',
                        help='add ours+deploy (mmresfamily.deploy.optimize_for_inference: BN '
                        'folded + channels_last unless the model computes in NCHW; forward)')
    parser.add_argument('--deploy-compile', action='store_true',
                        help='add ours+deploy_compile (optimize_for_inference(compile=True): '
                        'the deploy model compiled by TorchInductor with frozen weights, for '
                        'the benchmark input shape; compiling takes a while per model; '
                        'forward)')
    parser.add_argument('--onnxruntime', action='store_true',
                        help='add ours+onnxruntime (the eager model exported to ONNX at the '
                        "benchmark shape, run by onnxruntime's CPU provider; forward; needs "
                        'the deploy extra)')
    parser.add_argument('--with-cp', action='store_true', help='add ours+with_cp')
    parser.add_argument('--again', action='store_true',
                        help='add ours+again: a second copy of ours in the same round robin, so '
                        'the ours+again / ours ratio shows the timing noise (A/A test)')
    parser.add_argument('--no-references', action='store_true', help='ours only')
    parser.add_argument('--modes', nargs='+', choices=MODES, default=list(MODES),
                        help='what to time (default: both)')
    parser.add_argument('--repeats', type=int_at_least(1), default=5)
    parser.add_argument('--warmup', type=int_at_least(0), default=2)
    parser.add_argument('--threads', type=int_at_least(1), help="torch CPU threads (default: "
                        "torch's)")
    parser.add_argument('--no-memory', action='store_true', help='skip peak-memory children')
    parser.add_argument('--out-dir', type=Path, default=Path('work_dirs/benchmark'))
    parser.add_argument('--keep-existing', action='store_true',
                        help='keep the variants already in OUT_DIR/benchmark.csv (an interrupted '
                        'run resumes; the CSV is written after every variant)')
    parser.add_argument('--child', help=argparse.SUPPRESS)  # internal: VARIANT|IMPL|MODE


def peak_in_child(args):
    variant, impl, mode = args.child.split('|')
    device = torch.device(args.device)
    runner = Runner(build_impl(variant, impl, input_shape(args), device)[0], args, device)
    # one unmeasured call first: the first call also pages in library code and JIT-compiles
    # oneDNN kernels (tens of MB, the same for every model), which is not the step's memory
    runner.run(mode)
    runner.model.zero_grad(set_to_none=True)  # the measured call allocates its gradients anew
    print(json.dumps(dict(peak_bytes=peak_extra_bytes(lambda: runner.run(mode), device))))


def benchmark_variant(variant, args, device):
    """One row per implementation of `variant`."""
    impls = implementations(variant, args)
    if args.no_references:
        impls = [i for i in impls if i == 'ours' or i.startswith('ours+')]
    built = {impl: build_impl(variant, impl, input_shape(args), device) for impl in impls}
    rows = {impl: dict(variant=variant, impl=impl,
                       params_M=sum(p.numel() for p in model.parameters()) / 1e6,
                       GMACs=gmacs_per_image(model, args.size))
            for impl, (model, _) in built.items()}
    runners = {impl: Runner(model, args, device) for impl, (model, _) in built.items()}
    for mode in args.modes:
        takes_part = [i for i in impls if mode == 'forward' or built[i][1]]
        if mode == 'forward':  # with_cp only changes training; fold_bn only inference
            takes_part = [i for i in takes_part if i != DEPLOY_IMPLS['with_cp']]
        rounds = timed_round_robin({i: (lambda r=runners[i]: r.run(mode)) for i in takes_part},
                                   device, args.warmup, args.repeats)
        for impl, seconds in rounds.items():
            rows[impl][f'{mode}_img_s'] = args.batch / statistics.median(seconds)
            rows[impl][f'{mode}_round_s'] = seconds
            if not args.no_memory and impl != DEPLOY_IMPLS['again']:  # same memory as ours
                peak = in_child(['models', '--child', f'{variant}|{impl}|{mode}'] +
                                forward_args(args, CHILD_OPTIONS))['peak_bytes']
                rows[impl][f'{mode}_peak_MB'] = peak / 2**20
    del runners, built
    return list(rows.values())


def run(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f'--variants must be among {", ".join(VARIANTS)}; got {unknown}')
    device = check_device(args.device)
    if args.child:
        return peak_in_child(args)
    setting = (f'batch {args.batch}, {args.size}x{args.size}, {device}'
               f'{", channels_last" if args.channels_last else ""}'
               f'{", bf16 autocast" if args.bf16 else ""}; median of {args.repeats} after '
               f'{args.warmup} warm-up runs')
    print(f'{machine_description(device)}\n{setting}', flush=True)
    csv_path = args.out_dir / 'benchmark.csv'
    rows = read_rows(csv_path) if args.keep_existing and csv_path.is_file() else []
    start = time.time()
    for variant in args.variants:
        if any(r['variant'] == variant for r in rows):
            print(f'  ({variant}: kept from {csv_path})', flush=True)
            continue
        t0 = time.time()
        for row in benchmark_variant(variant, args, device):
            row['forward_GMACs_per_s'] = (row['GMACs'] * row['forward_img_s']
                                          if row.get('forward_img_s') else None)
            rows.append(row)
            print(' '.join(f'{k}={fmt(row.get(k))}' for k in COLUMNS), flush=True)
        write_rows(csv_path, rows)
        print(f'  ({variant}: {time.time() - t0:.0f}s)', flush=True)
    rows.sort(key=lambda r: list(VARIANTS).index(r['variant']))
    write_rows(csv_path, rows)
    text = models_markdown(rows, machine_description(device), setting, args.command_line,
                           time.time() - start)
    (args.out_dir / 'benchmark.md').write_text('\n'.join(text) + '\n')
    plot(rows, args.out_dir / 'benchmark.png', setting)
    print('\n'.join(text[6:]))
    print(f'wrote {args.out_dir}/benchmark.{{md,csv,png}}')
    return rows
