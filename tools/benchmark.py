#!/usr/bin/env python
"""Benchmarks, one subcommand each. Speed and memory targets live here, never in timed tests.

    python tools/benchmark.py models [--variants ResNet-50 ResNeSt-50 ...] [--batch 8]
        [--size 224] [--device cpu|cuda] [--channels-last] [--bf16] [--fold-bn] [--deploy]
        [--deploy-compile] [--with-cp] [--again]
        [--out-dir docs/benchmarks]
    python tools/benchmark.py involution --channels 64 --size 56 --batch 8

models: every registered family at its base depth (default), and for each variant the same
architecture from timm and mmdet where they have it (the equivalence tests prove the match), all
with the same random weights distribution. Columns: params (backbone only, no classifier) and
GMACs per image (mmengine.analysis FlopAnalyzer), forward (eval, no grad) and forward+backward
(train mode, loss = mean of the last stage's output) throughput in img/s, each the median over
--repeats after --warmup; the implementations of a variant are timed round-robin (ours, theirs,
ours, ...) so drift of the machine hits all alike. Peak memory is measured in a fresh subprocess
per (implementation, mode), of the second call (steady state: the first also pages in library code
and JIT-compiles kernels, tens of MB that are the same for every model and are no step's memory):
CPU: peak RSS growth during the call (Linux /proc, the peak mark reset first, glibc told to return
every tensor's memory on free, see `in_child`); CUDA: growth of torch.cuda.max_memory_allocated.
Deploy rows: --fold-bn adds `ours+fold_bn` (mmresfamily.deploy.fold_batchnorm, forward only),
--deploy `ours+deploy` (deploy.optimize_for_inference: folded + its layout, forward only),
--deploy-compile `ours+deploy_compile` (the same, compiled by Inductor with frozen weights for the
benchmark's input shape before timing; forward only; GMACs counted on the uncompiled graph),
--with-cp `ours+with_cp` (activation checkpointing); --again adds `ours+again`, a second copy of
ours timed in the same round robin: its ratio to ours is the timing noise of the run (A/A).
Writes benchmark.{md,csv,png} into --out-dir: the Markdown has the machine, the command and a
ratio table (ours / theirs, > 1 means ours is faster or, for memory, < 1 means ours uses less),
then paired speed ratios: per round-robin round the ratio of the two times, their median and a
distribution-free ~95 % interval for it, and whether the interval lies above 1 (faster), below
(slower) or includes it (tie). On a shared machine a ratio of medians moves by +-10 % between
runs; pairing rounds cancels what the machine does between rounds. The CSV keeps every round.

involution: the per-location aggregation of involution (the generator is excluded: it is the
same for both), naive unfold formula vs the shift-and-add path used by the models, forward and
forward+backward; median time, the largest intermediate tensor (from the shapes), and the
measured peak extra memory as above. Outputs of both paths are compared.

Add a subcommand with `@subcommand(name, help, arguments)` on a function taking the parsed args.
"""
import argparse
import csv
import json
import logging
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmresfamily.models.layers.involution import (involution_shift_add,  # noqa: E402
                                                  involution_unfold)
from mmresfamily.utils.cli import int_at_least  # noqa: E402

SUBCOMMANDS = {}
MODES = ('forward', 'forward+backward')


def subcommand(name, help, arguments):
    """Register `fn(args)` as `benchmark.py NAME`; `arguments(parser)` adds its options."""

    def register(fn):
        SUBCOMMANDS[name] = (fn, help, arguments)
        return fn

    return register


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device, warmup, repeats):
    """Median seconds of `fn()` over `repeats` runs after `warmup` runs."""
    return statistics.median(timed_round_robin({'fn': fn}, device, warmup, repeats)['fn'])


def timed_round_robin(fns, device, warmup, repeats):
    """{name: [seconds of round 1, 2, ...]}; the functions take turns within every round, so
    drift of the machine affects all alike and round i of two functions is a pair."""
    times = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def median_interval(values, confidence=0.95):
    """(median, low, high, coverage): a distribution-free interval for the median.

    The k-th smallest and k-th largest value bracket the median with probability
    1 - 2 * P(Binomial(n, 1/2) < k); k is the largest that keeps this >= `confidence` (with
    fewer than 6 values no k does, and the interval is the full range, of lower coverage).
    """
    values = sorted(values)
    n = len(values)
    tail, k, coverage = 0.0, 1, 1 - 2 * 0.5**n
    for j in range(1, n // 2 + 1):  # after the next line, tail = P(B < j)
        tail += math.comb(n, j - 1) * 0.5**n
        if 1 - 2 * tail < confidence:
            break
        k, coverage = j, 1 - 2 * tail
    return statistics.median(values), values[k - 1], values[n - k], coverage


def paired_speed_ratio(num_seconds, den_seconds):
    """Median and interval of den/num over paired rounds: > 1 when `num` is faster."""
    return median_interval([d / n for n, d in zip(num_seconds, den_seconds)])


def verdict(low, high):
    """Speed ratio vs 1.00 at the interval's confidence."""
    return 'faster' if low > 1 else 'slower' if high < 1 else 'tie'


def proc_status_kib(field):
    """A memory field (KiB) of /proc/self/status: VmRSS now, VmHWM peak since the reset."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status (Linux only)')


def peak_extra_bytes(fn, device):
    """Peak memory growth (bytes) during one call of `fn()` (see the module doc)."""
    if device.type == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    # the high-water mark from building the model would hide the call's own peak: reset it
    Path('/proc/self/clear_refs').write_text('5')
    before = proc_status_kib('VmRSS')
    fn()
    return (proc_status_kib('VmHWM') - before) * 1024


def in_child(argv):
    """Run this script with `argv` in a fresh process; the JSON its last line prints.

    glibc's malloc keeps freed heap memory and, after the first large free, serves tensors of
    up to 32 MB from the heap: RSS would then show the allocator's high-water mark, not the
    tensors'. A fixed mmap threshold makes every tensor over 64 KiB its own mapping, returned
    on free, so peak RSS follows live tensor memory (the child is only measured, not timed).
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    result = subprocess.run([sys.executable, __file__] + argv, capture_output=True, text=True,
                            env=env)
    if result.returncode:
        raise RuntimeError(f'benchmark child {argv} failed:\n{result.stderr[-3000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def forward_args(args, names):
    """The command-line options `names` of `args`, to hand to a child."""
    argv = []
    for name in names:
        value = getattr(args, name)
        flag = f'--{name.replace("_", "-")}'
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return argv


def check_device(name):
    device = torch.device(name)
    if device.type not in ('cpu', 'cuda'):
        raise SystemExit(f'--device must be cpu or cuda[:N]; got {name!r}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is visible to torch')
    return device


# ---- models -------------------------------------------------------------------------------
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
    from mmresfamily import zoo
    row, changes = VARIANTS[variant][0], {}
    if isinstance(row, tuple):
        row, changes = row
    return dict(zoo.get(row).backbone_cfg, **changes)


# generated-kernel families: with randomize_'s weights their activations overflow to inf/NaN
# within a few blocks (and timing NaNs measures nothing), so they get their default init and
# measured BN statistics instead (as tests/test_deploy.py does)
DYNAMIC_KERNELS = {'RedNet-50', 'DCDC-ResNet-50'}
DEPLOY_IMPLS = {'fold_bn': 'ours+fold_bn', 'deploy': 'ours+deploy',
                'deploy_compile': 'ours+deploy_compile', 'with_cp': 'ours+with_cp',
                'again': 'ours+again'}


class TimmFeatures(nn.Module):
    """A timm classifier's feature extractor (`forward_features`: the backbone, no head)."""

    def __init__(self, name):
        super().__init__()
        import timm
        self.model = timm.create_model(name, pretrained=False, num_classes=0)

    def forward(self, x):
        return self.model.forward_features(x)


def build_impl(variant, impl, input_shape, device):
    """(model, trainable) for one implementation of a variant, weights randomised alike.

    `input_shape`, `device`: the benchmark input's, what the compiled deploy row is compiled for
    (the others are moved to the device by `Runner`).
    """
    import mmresfamily  # noqa: F401  (registers the backbones)
    from mmresfamily.deploy import fold_batchnorm, optimize_for_inference
    from mmresfamily.registry import MODELS
    from mmresfamily.testing import calibrate_norms_, randomize_
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
    if variant in DYNAMIC_KERNELS:
        MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights logs every key
        model.init_weights()
        calibrate_norms_(model, seed=0)
    else:
        randomize_(model, seed=0)
    if impl == DEPLOY_IMPLS['fold_bn']:
        return fold_batchnorm(model, torch.randn(1, 3, 64, 64)), False
    if impl == DEPLOY_IMPLS['deploy']:
        return optimize_for_inference(model, torch.randn(1, 3, 64, 64)), False
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
    from mmengine.analysis import FlopAnalyzer
    model.eval()  # not chained: mmdet's train() override returns None
    analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, size, size), ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    # a compiled deploy model (nn.Module.compile) is counted on the eager module it compiled:
    # jit.trace refuses dynamo-optimised calls
    compiled, model._compiled_call_impl = getattr(model, '_compiled_call_impl', None), None
    try:
        return analyzer.total() / 1e9  # mmengine counts one multiply-add as one flop
    finally:
        model._compiled_call_impl = compiled


MODEL_CHILD_OPTIONS = ('batch', 'size', 'device', 'channels_last', 'bf16', 'threads')


def models_arguments(parser):
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
                        'the benchmark input shape; 20-60 s of compile per model on 2 CPU cores; '
                        'forward)')
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


def model_peak_in_child(args):
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
                                forward_args(args, MODEL_CHILD_OPTIONS))['peak_bytes']
                rows[impl][f'{mode}_peak_MB'] = peak / 2**20
    del runners, built
    return list(rows.values())


COLUMNS = ['variant', 'impl', 'params_M', 'GMACs', 'forward_img_s', 'forward+backward_img_s',
           'forward_peak_MB', 'forward+backward_peak_MB', 'forward_GMACs_per_s']
ROUND_COLUMNS = [f'{mode}_round_s' for mode in MODES]  # CSV only: every round's seconds


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, COLUMNS + ROUND_COLUMNS, extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (' '.join(f'{s:.6f}' for s in v) if k in ROUND_COLUMNS else v)
                             for k, v in row.items()})


def read_rows(path):
    """Rows of a benchmark.csv, numbers as floats and missing values left out."""
    def parse(key, value):
        if key in ('variant', 'impl'):
            return value
        return [float(s) for s in value.split()] if key in ROUND_COLUMNS else float(value)

    with open(path) as f:
        return [{k: parse(k, v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def fmt(value):
    if value is None:
        return '-'
    return f'{value:.2f}' if isinstance(value, float) else str(value)


def markdown_table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(fmt(r.get(h)) for h in header) + ' |' for r in rows]
    return '\n'.join(lines)


def ratio_rows(rows):
    """ours / theirs per variant and reference (and deploy variants / plain ours)."""
    out = []
    for ours in (r for r in rows if r['impl'] == 'ours'):
        for other in (r for r in rows if r['variant'] == ours['variant'] and r is not ours):
            row = dict(variant=ours['variant'])
            if other['impl'].startswith('ours+'):
                row['compared'] = f"{other['impl']} / ours"
                num, den = other, ours
            else:
                row['compared'] = f"ours / {other['impl']}"
                num, den = ours, other
            for key in ('forward_img_s', 'forward+backward_img_s', 'forward_peak_MB',
                        'forward+backward_peak_MB'):
                if num.get(key) and den.get(key):
                    row[key] = num[key] / den[key]
            for mode in MODES:
                rounds = num.get(f'{mode}_round_s'), den.get(f'{mode}_round_s')
                if rounds[0] and rounds[1] and len(rounds[0]) == len(rounds[1]):
                    median, low, high, coverage = paired_speed_ratio(*rounds)
                    row[f'{mode}_paired'] = (f'{median:.3f} [{low:.3f}, {high:.3f}] '
                                             f'{verdict(low, high)}')
                    row['coverage'] = coverage
            out.append(row)
    return out


def machine_description(device):
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    text = (f'{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with '
            f'{torch.get_num_threads()} threads, Python {platform.python_version()}')
    if device.type == 'cuda':
        text += f', GPU: {torch.cuda.get_device_name(device)}'
    return text


def plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    variants = list(dict.fromkeys(r['variant'] for r in rows))
    impls = list(dict.fromkeys(r['impl'] for r in rows))
    panels = [('forward_img_s', 'forward img/s'), ('forward+backward_img_s', 'fwd+bwd img/s'),
              ('forward+backward_peak_MB', 'fwd+bwd peak MB'), ('params_M', 'params (M)')]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.45 * len(variants) *
                                                     max(1, len(impls)) ** 0.5 + 1.5),
                             sharey=True)
    height = 0.8 / len(impls)
    for ax, (key, label) in zip(axes, panels):
        for k, impl in enumerate(impls):
            ys, xs = [], []
            for v, variant in enumerate(variants):
                row = next((r for r in rows if r['variant'] == variant and r['impl'] == impl),
                           None)
                if row is not None and row.get(key) is not None:
                    ys.append(v + k * height)
                    xs.append(row[key])
            ax.barh(ys, xs, height=height, label=impl)
        ax.set_xlabel(label)
        ax.grid(axis='x', alpha=0.3)
    axes[0].set_yticks([v + 0.4 - height / 2 for v in range(len(variants))])
    axes[0].set_yticklabels(variants)
    axes[0].invert_yaxis()
    axes[-1].legend(loc='lower right', fontsize='small')
    fig.suptitle(title, fontsize='medium')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@subcommand('models', 'throughput, memory, params and GMACs of every family vs timm/mmdet',
            models_arguments)
def models(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f'--variants must be among {", ".join(VARIANTS)}; got {unknown}')
    device = check_device(args.device)
    if args.child:
        return model_peak_in_child(args)
    command = args.command_line
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
    ratios = ratio_rows(rows)
    ours = [r for r in rows if r['impl'] == 'ours' and r.get('forward_GMACs_per_s')]
    slowest = min(ours, key=lambda r: r['forward_GMACs_per_s']) if ours else None
    text = [f'Machine: {machine_description(device)}.', '', f'Setting: {setting}.', '',
            f'Command: `{command}` ({time.time() - start:.0f} s)', '',
            markdown_table(COLUMNS, rows), '',
            'Ratios (> 1: the first is faster; for peak memory, < 1: the first uses less):', '',
            markdown_table(['variant', 'compared', 'forward_img_s', 'forward+backward_img_s',
                            'forward_peak_MB', 'forward+backward_peak_MB'], ratios)]
    paired = [r for r in ratios if r.get('forward_paired') or r.get('forward+backward_paired')]
    if paired:
        coverage = min(r['coverage'] for r in paired)
        text += ['', f'Paired speed ratios: the median over rounds of (time of the second / time '
                     f'of the first) in the same round, and a distribution-free interval for '
                     f'that median (>= {coverage:.1%} confidence); faster / slower: the '
                     f'interval excludes 1, tie: it does not.', '',
                 markdown_table(['variant', 'compared', 'forward_paired',
                                 'forward+backward_paired'], paired)]
    if slowest:
        text += ['', f'Lowest forward GMACs/s of ours (slowest for its arithmetic): '
                     f'{slowest["variant"]} ({slowest["forward_GMACs_per_s"]:.1f} GMACs/s).']
    (args.out_dir / 'benchmark.md').write_text('\n'.join(text) + '\n')
    plot(rows, args.out_dir / 'benchmark.png', setting)
    print('\n'.join(text[6:]))
    print(f'wrote {args.out_dir}/benchmark.{{md,csv,png}}')
    return rows


# ---- involution ---------------------------------------------------------------------------
INVOLUTION_PATHS = {'unfold': involution_unfold, 'shift_add': involution_shift_add}


def involution_arguments(parser):
    parser.add_argument('--channels', type=int_at_least(1), default=64)
    parser.add_argument('--size', type=int_at_least(1), default=56, help='input height = width')
    parser.add_argument('--batch', type=int_at_least(1), default=8)
    parser.add_argument('--kernel-size', type=int_at_least(1), default=7)
    parser.add_argument('--stride', type=int_at_least(1), default=1)
    parser.add_argument('--dilation', type=int_at_least(1), default=1)
    parser.add_argument('--group-channels', type=int_at_least(1), default=16,
                        help='channels per involution group (must divide --channels)')
    parser.add_argument('--repeats', type=int_at_least(1), default=10)
    parser.add_argument('--warmup', type=int_at_least(0), default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int_at_least(1), help='torch CPU threads (default: '
                        'torch\'s)')
    parser.add_argument('--json', type=Path, help='also write the rows here')
    parser.add_argument('--peak-of', help=argparse.SUPPRESS)  # internal: PATH:MODE in a child


def involution_inputs(args, device, requires_grad=False):
    k, s, d = args.kernel_size, args.stride, args.dilation
    out = (args.size + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1
    groups = args.channels // args.group_channels
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, generator=gen)
    weight = torch.randn(args.batch, groups * k * k, out, out, generator=gen)
    return (x.to(device).requires_grad_(requires_grad),
            weight.to(device).requires_grad_(requires_grad))


def involution_run(args, path, mode, x, weight):
    fn = INVOLUTION_PATHS[path]
    if mode == 'forward':
        with torch.no_grad():
            return fn(x, weight, args.kernel_size, args.stride, args.dilation)
    x.grad = weight.grad = None
    out = fn(x, weight, args.kernel_size, args.stride, args.dilation)
    out.backward(torch.ones_like(out))
    return out


def involution_largest_intermediate(args, path):
    """Bytes of the largest tensor the path creates beyond inputs and output (from shapes)."""
    k, s, d = args.kernel_size, args.stride, args.dilation
    out = (args.size + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1
    padded = args.size + 2 * (d * (k - 1) // 2)
    if path == 'unfold':  # the K^2 patch tensor (and the product of the same size)
        return 4 * args.batch * args.channels * k * k * out * out
    return 4 * args.batch * args.channels * padded * padded  # the padded input (or its grad)


def involution_peak_in_child(args):
    """Runs in a fresh process: peak memory growth (bytes) of one call."""
    path, mode = args.peak_of.split(':')
    device = torch.device(args.device)
    x, weight = involution_inputs(args, device, requires_grad=mode != 'forward')
    peak = peak_extra_bytes(lambda: involution_run(args, path, mode, x, weight), device)
    print(json.dumps(dict(peak_bytes=peak)))


def involution_peak(args, path, mode):
    options = ('channels', 'size', 'batch', 'kernel_size', 'stride', 'dilation',
               'group_channels', 'device', 'threads')
    return in_child(['involution', '--peak-of', f'{path}:{mode}'] +
                    forward_args(args, options))['peak_bytes']


@subcommand('involution', 'naive unfold vs shift-and-add involution aggregation',
            involution_arguments)
def involution(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.channels % args.group_channels:
        raise SystemExit(f'--group-channels {args.group_channels} must divide --channels '
                         f'{args.channels} (each group has the same number of channels)')
    if args.peak_of:
        return involution_peak_in_child(args)
    device = torch.device(args.device)
    print(f'involution aggregation: batch {args.batch}, {args.channels} channels, '
          f'{args.size}x{args.size}, K={args.kernel_size}, stride {args.stride}, dilation '
          f'{args.dilation}, {args.channels // args.group_channels} groups; {device}, '
          f'{torch.get_num_threads()} threads; median of {args.repeats} after {args.warmup} '
          f'warm-up runs')
    x, weight = involution_inputs(args, device)
    with torch.no_grad():
        outs = [involution_run(args, p, 'forward', x, weight) for p in INVOLUTION_PATHS]
    max_diff = ((outs[0] - outs[1]).abs().max() / outs[0].abs().max()).item()
    del outs
    rows = []
    for mode in MODES:
        x, weight = involution_inputs(args, device, requires_grad=mode != 'forward')
        for path in INVOLUTION_PATHS:
            seconds = timed(lambda: involution_run(args, path, mode, x, weight), device,
                            args.warmup, args.repeats)
            rows.append(dict(mode=mode, path=path, ms=seconds * 1e3,
                             largest_intermediate_MB=involution_largest_intermediate(
                                 args, path) / 2**20,
                             measured_peak_extra_MB=involution_peak(args, path, mode) / 2**20))
    header = ['mode', 'path', 'ms', 'largest_intermediate_MB', 'measured_peak_extra_MB']
    print('| ' + ' | '.join(header) + ' |\n|' + '---|' * len(header))
    for row in rows:
        print('| ' + ' | '.join(f'{row[h]:.1f}' if isinstance(row[h], float) else row[h]
                                for h in header) + ' |')
    for mode in MODES:
        naive, fast = (next(r for r in rows if r['mode'] == mode and r['path'] == p)
                       for p in INVOLUTION_PATHS)
        print(f'{mode}: shift_add is {naive["ms"] / fast["ms"]:.1f}x faster, peak extra memory '
              f'{naive["measured_peak_extra_MB"]:.0f} -> {fast["measured_peak_extra_MB"]:.0f} MB')
    print(f'max |unfold - shift_add| / max |unfold| = {max_diff:.2e}')
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, max_rel_diff=max_diff), indent=2))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    for name, (fn, help, arguments) in SUBCOMMANDS.items():
        arguments(commands.add_parser(name, help=help, description=help))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = 'python tools/benchmark.py ' + shlex.join(argv)
    return SUBCOMMANDS[args.command][0](args)


if __name__ == '__main__':
    main()
