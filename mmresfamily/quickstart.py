"""The main job: build the quickstart data, train a detector with an mmresfamily backbone on it,
evaluate COCO AP, and save a loss curve and an image of predictions (`tools/quickstart.py`).

    python tools/quickstart.py [--config CONFIG] [--work-dir DIR] [--iters N]

Default: Faster R-CNN + ResNet-18 from scratch, 600 iterations (minutes on a few CPU cores).
`--config configs/quickstart/mask-rcnn_r18_fpn_quickstart.py` adds instance masks and segm AP
(slower on CPU: mmcv's CPU RoIAlign backward dominates).
"""
import argparse
import time
from pathlib import Path

from .utils.launch import read_scalars
from .utils.paths import CONFIGS, REPO_ROOT

DEFAULT_CONFIG = CONFIGS / 'quickstart/faster-rcnn_r18_fpn_quickstart.py'


def plot_losses(records, out: Path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    train = [r for r in records if 'loss' in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in [k for k in train[0] if k.startswith('loss')]:
        ax.plot([r['iter'] for r in train], [r[key] for r in train], label=key,
                linewidth=2 if key == 'loss' else 1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_yscale('log')
    ax.legend(fontsize=8)
    ax.set_title('quickstart training loss')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def draw_predictions(config, checkpoint, images, out: Path, score_thr=0.5):
    import cv2
    import numpy as np
    from mmdet.apis import inference_detector, init_detector

    from .utils import trusted_runner_checkpoints
    with trusted_runner_checkpoints():
        model = init_detector(str(config), str(checkpoint), device='cpu')
    classes = model.dataset_meta['classes']
    tiles = []
    for path in images:
        img = cv2.imread(str(path))
        pred = inference_detector(model, img).pred_instances
        keep = pred.scores > score_thr
        canvas = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
        if 'masks' in pred:
            for mask in pred.masks[keep].numpy():
                big = cv2.resize(mask.astype(np.uint8), canvas.shape[1::-1]) > 0
                canvas[big] = (0.6 * canvas[big] + 0.4 * np.array([0, 200, 255])).astype(np.uint8)
        for box, label, score in zip(pred.bboxes[keep].numpy() * 3, pred.labels[keep],
                                     pred.scores[keep]):
            x1, y1, x2, y2 = box.astype(int)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), 2)
            cv2.putText(canvas, f'{classes[label]} {score:.2f}', (x1, max(y1 - 4, 10)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(canvas)
    rows = [np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(out), np.vstack(rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--config', type=Path, default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', type=Path, default=REPO_ROOT / 'work_dirs/quickstart')
    parser.add_argument('--data', type=Path, default=REPO_ROOT / 'data/quickstart')
    parser.add_argument('--iters', type=int, help='override train_cfg.max_iters')
    args = parser.parse_args(argv)
    start = time.time()
    if not (args.data / 'annotations/instances_val.json').is_file():
        from .datasets.quickstart import main as make_quickstart_data
        make_quickstart_data(['--out', str(args.data)])

    from .train import main as train
    options = ['--cfg-options', f'data_root={args.data}/']
    if args.iters:
        options += [f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}',
                    f'max_iters={args.iters}']
    runner = train([str(args.config), '--work-dir', str(args.work_dir), *options])
    records = read_scalars(args.work_dir)
    metrics = [r for r in records if 'coco/bbox_mAP' in r][-1]
    checkpoint = args.work_dir / f'iter_{runner.iter}.pth'
    plot_losses(records, args.work_dir / 'loss_curve.png')
    val_images = sorted((args.data / 'val/images').glob('*.png'))[:8]
    draw_predictions(args.config, checkpoint, val_images, args.work_dir / 'predictions.png')
    print('\n== quickstart result ==')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        if key in metrics:
            print(f'{key}: {metrics[key]:.3f}')
    print(f'checkpoint: {checkpoint}\nloss curve: {args.work_dir / "loss_curve.png"}\n'
          f'predictions: {args.work_dir / "predictions.png"}\n'
          f'wall time: {time.time() - start:.0f}s')
