#!/usr/bin/env python
"""Micro-benchmarks, one subcommand each.

    python tools/benchmark.py involution --channels 64 --size 56 --batch 8

involution: the per-location aggregation of involution (the generator is excluded: it is the
same for both), naive unfold formula vs the shift-and-add path used by the models, forward
(no grad) and forward+backward. Reports the median wall time over --repeats after --warmup runs,
the largest intermediate tensor computed from the shapes, and the measured peak extra memory
(CPU, Linux: in a fresh subprocess that builds the inputs, resets the peak-RSS mark through
/proc/self/clear_refs and runs the operation once, peak RSS minus RSS before the call; CUDA:
torch.cuda.max_memory_allocated growth). RSS counts pages the allocator touched, so it is a
measurement of the process, not of tensors alone. Outputs of both paths are compared.

Add a subcommand with `@subcommand(name, help)` on a function taking the parsed args, and
`add_arguments` on the function's `.arguments` attribute (see `involution`).
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmresfamily.models.layers.involution import (involution_shift_add,  # noqa: E402
                                                  involution_unfold)

SUBCOMMANDS = {}


def subcommand(name, help, arguments):
    """Register `fn(args)` as `benchmark.py NAME`; `arguments(parser)` adds its options."""

    def register(fn):
        SUBCOMMANDS[name] = (fn, help, arguments)
        return fn

    return register


def timed(fn, device, warmup, repeats):
    """Median seconds of `fn()` over `repeats` runs after `warmup` runs."""
    times = []
    for i in range(warmup + repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- involution ---------------------------------------------------------------------------
INVOLUTION_PATHS = {'unfold': involution_unfold, 'shift_add': involution_shift_add}
MODES = ('forward', 'forward+backward')


def involution_arguments(parser):
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--size', type=int, default=56, help='input height = width')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--kernel-size', type=int, default=7)
    parser.add_argument('--stride', type=int, default=1)
    parser.add_argument('--dilation', type=int, default=1)
    parser.add_argument('--group-channels', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
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
    """Runs in a fresh process: max-RSS growth (bytes) of one call after building inputs."""
    path, mode = args.peak_of.split(':')
    device = torch.device(args.device)
    x, weight = involution_inputs(args, device, requires_grad=mode != 'forward')
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        involution_run(args, path, mode, x, weight)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        # the high-water mark from importing torch would hide the call's own peak: reset it
        Path('/proc/self/clear_refs').write_text('5')
        before = proc_status_kib('VmRSS')
        involution_run(args, path, mode, x, weight)
        peak = (proc_status_kib('VmHWM') - before) * 1024
    print(json.dumps(dict(peak_bytes=peak)))


def proc_status_kib(field):
    """A memory field (KiB) of /proc/self/status: VmRSS now, VmHWM peak since the reset."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status (Linux only)')


def involution_peak(args, path, mode):
    cmd = [sys.executable, __file__, 'involution', '--peak-of', f'{path}:{mode}']
    for name in ('channels', 'size', 'batch', 'kernel_size', 'stride', 'dilation',
                 'group_channels', 'device', 'threads'):
        value = getattr(args, name)
        if value is not None:
            cmd += [f'--{name.replace("_", "-")}', str(value)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])['peak_bytes']


@subcommand('involution', 'naive unfold vs shift-and-add involution aggregation',
            involution_arguments)
def involution(args):
    if args.threads:
        torch.set_num_threads(args.threads)
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
    args = parser.parse_args(argv)
    return SUBCOMMANDS[args.command][0](args)


if __name__ == '__main__':
    main()
