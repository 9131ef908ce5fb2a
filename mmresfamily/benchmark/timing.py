"""Timing (round robin, medians and their paired ratios) and peak memory in a fresh process."""
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

MODES = ('forward', 'forward+backward')


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
    """Peak memory growth (bytes) during one call of `fn()`: on CUDA, of
    torch.cuda.max_memory_allocated; on CPU, of the process's peak RSS (Linux /proc)."""
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
    """Run `python -m mmresfamily.benchmark ARGV` in a fresh process; the JSON its last line
    prints.

    glibc's malloc keeps freed heap memory and, after the first large free, serves tensors of
    up to 32 MB from the heap: RSS would then show the allocator's high-water mark, not the
    tensors'. A fixed mmap threshold makes every tensor over 64 KiB its own mapping, returned
    on free, so peak RSS follows live tensor memory (the child is only measured, not timed).
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    result = subprocess.run([sys.executable, '-m', __package__] + argv, capture_output=True,
                            text=True, env=env)
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
