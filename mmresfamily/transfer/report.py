"""The transfer table: one CSV row per backbone x detector x iters, a Markdown table and a chart."""
from ..utils.csv_table import write_csv

METRICS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'segm_mAP', 'segm_mAP_50', 'segm_mAP_75')
COLUMNS = ('backbone', 'pretrained', 'detector', 'iters') + METRICS + ('train_seconds',)


def row_key(row):
    return (row['backbone'], row['detector'], str(row['iters']))


def write_outputs(rows, prefix):
    """CSV (all rows), Markdown table and a horizontal bar chart, written atomically."""
    write_csv(prefix.with_name(prefix.name + '.csv'), rows, COLUMNS)

    shown = [m for m in METRICS if any(r.get(m) not in (None, '') for r in rows)]
    lines = ['| backbone | pretrained | detector | iters | ' + ' | '.join(shown) +
             ' | train s |', '|' + '---|' * (len(shown) + 5)]
    for r in rows:
        lines.append(f'| {r["backbone"]} | {r["pretrained"]} | {r["detector"]} | {r["iters"]} '
                     '| ' + ' | '.join(r.get(m) or '' for m in shown) +
                     f' | {r["train_seconds"]} |')
    prefix.with_name(prefix.name + '.md').write_text(
        'COCO transfer: COCO AP (pycocotools) after fine-tuning with one shared schedule.\n\n' +
        '\n'.join(lines) + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    plotted = [m for m in ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP') if m in shown]
    several = len({r['detector'] for r in rows}) > 1
    labels = [r['backbone'] + (f' ({r["detector"]})' if several else '') for r in rows]
    height = 0.8 / max(1, len(plotted))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * len(rows) * max(1, len(plotted))))
    for i, metric in enumerate(plotted):
        values = [float(r[metric]) if r.get(metric) else 0.0 for r in rows]
        ys = [j + (i - (len(plotted) - 1) / 2) * height for j in range(len(rows))]
        bars = ax.barh(ys, values, height=height, label=metric)
        ax.bar_label(bars, fmt='%.3f', fontsize=8, padding=2)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel('COCO AP')
    ax.set_title(f'COCO transfer ({", ".join(sorted({r["detector"] for r in rows}))})')
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    fig.savefig(prefix.with_name(prefix.name + '.png'), dpi=100)
    plt.close(fig)
