"""`involution`: naive unfold vs shift-and-add involution aggregation."""
import argparse
import json
from pathlib import Path

import torch

from ..models.layers.involution import involution_shift_add, involution_unfold
from ..utils.cli import int_at_least
from .timing import MODES, forward_args, in_child, peak_extra_bytes, timed

HELP = 'naive unfold vs shift-and-add involution aggregation'
PATHS = {'unfold': involution_unfold, 'shift_add': involution_shift_add}


def add_arguments(parser):
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


def output_size(args):
    k, s, d = args.kernel_size, args.stride, args.dilation
    return (args.size + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1


def make_inputs(args, device, requires_grad=False):
    k, out = args.kernel_size, output_size(args)
    groups = args.channels // args.group_channels
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, generator=gen)
    weight = torch.randn(args.batch, groups * k * k, out, out, generator=gen)
    return (x.to(device).requires_grad_(requires_grad),
            weight.to(device).requires_grad_(requires_grad))


def run_path(args, path, mode, x, weight):
    fn = PATHS[path]
    if mode == 'forward':
        with torch.no_grad():
            return fn(x, weight, args.kernel_size, args.stride, args.dilation)
    x.grad = weight.grad = None
    out = fn(x, weight, args.kernel_size, args.stride, args.dilation)
    out.backward(torch.ones_like(out))
    return out


def largest_intermediate(args, path):
    """Bytes of the largest tensor the path creates beyond inputs and output (from shapes)."""
    k, d = args.kernel_size, args.dilation
    out = output_size(args)
    padded = args.size + 2 * (d * (k - 1) // 2)
    if path == 'unfold':  # the K^2 patch tensor (and the product of the same size)
        return 4 * args.batch * args.channels * k * k * out * out
    return 4 * args.batch * args.channels * padded * padded  # the padded input (or its grad)


def peak_in_child(args):
    """Runs in a fresh process: peak memory growth (bytes) of one call."""
    path, mode = args.peak_of.split(':')
    device = torch.device(args.device)
    x, weight = make_inputs(args, device, requires_grad=mode != 'forward')
    peak = peak_extra_bytes(lambda: run_path(args, path, mode, x, weight), device)
    print(json.dumps(dict(peak_bytes=peak)))


def measured_peak(args, path, mode):
    options = ('channels', 'size', 'batch', 'kernel_size', 'stride', 'dilation',
               'group_channels', 'device', 'threads')
    return in_child(['involution', '--peak-of', f'{path}:{mode}'] +
                    forward_args(args, options))['peak_bytes']


def run(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.channels % args.group_channels:
        raise SystemExit(f'--group-channels {args.group_channels} must divide --channels '
                         f'{args.channels} (each group has the same number of channels)')
    if args.peak_of:
        return peak_in_child(args)
    device = torch.device(args.device)
    print(f'involution aggregation: batch {args.batch}, {args.channels} channels, '
          f'{args.size}x{args.size}, K={args.kernel_size}, stride {args.stride}, dilation '
          f'{args.dilation}, {args.channels // args.group_channels} groups; {device}, '
          f'{torch.get_num_threads()} threads; median of {args.repeats} after {args.warmup} '
          f'warm-up runs')
    x, weight = make_inputs(args, device)
    with torch.no_grad():
        outs = [run_path(args, p, 'forward', x, weight) for p in PATHS]
    max_diff = ((outs[0] - outs[1]).abs().max() / outs[0].abs().max()).item()
    del outs
    rows = []
    for mode in MODES:
        x, weight = make_inputs(args, device, requires_grad=mode != 'forward')
        for path in PATHS:
            seconds = timed(lambda: run_path(args, path, mode, x, weight), device,
                            args.warmup, args.repeats)
            rows.append(dict(mode=mode, path=path, ms=seconds * 1e3,
                             largest_intermediate_MB=largest_intermediate(args, path) / 2**20,
                             measured_peak_extra_MB=measured_peak(args, path, mode) / 2**20))
    header = ['mode', 'path', 'ms', 'largest_intermediate_MB', 'measured_peak_extra_MB']
    print('| ' + ' | '.join(header) + ' |\n|' + '---|' * len(header))
    for row in rows:
        print('| ' + ' | '.join(f'{row[h]:.1f}' if isinstance(row[h], float) else row[h]
                                for h in header) + ' |')
    for mode in MODES:
        naive, fast = (next(r for r in rows if r['mode'] == mode and r['path'] == p)
                       for p in PATHS)
        print(f'{mode}: shift_add is {naive["ms"] / fast["ms"]:.1f}x faster, peak extra memory '
              f'{naive["measured_peak_extra_MB"]:.0f} -> {fast["measured_peak_extra_MB"]:.0f} MB')
    print(f'max |unfold - shift_add| / max |unfold| = {max_diff:.2e}')
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, max_rel_diff=max_diff), indent=2))
    return rows
