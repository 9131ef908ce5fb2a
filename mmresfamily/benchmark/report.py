"""The benchmark's outputs: rows as CSV, Markdown tables of rows and ratios, and a bar chart."""
import csv
import os
import platform

import torch

from ..utils.machine import cpu_name
from .timing import MODES, paired_speed_ratio, verdict

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
    text = (f'{cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with '
            f'{torch.get_num_threads()} threads, Python {platform.python_version()}')
    if device.type == 'cuda':
        text += f', GPU: {torch.cuda.get_device_name(device)}'
    return text


def models_markdown(rows, machine, setting, command, seconds):
    """benchmark.md of the `models` subcommand: the rows, their ratios and paired ratios."""
    ratios = ratio_rows(rows)
    ours = [r for r in rows if r['impl'] == 'ours' and r.get('forward_GMACs_per_s')]
    slowest = min(ours, key=lambda r: r['forward_GMACs_per_s']) if ours else None
    text = [f'Machine: {machine}.', '', f'Setting: {setting}.', '',
            f'Command: `{command}` ({seconds:.0f} s)', '',
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
