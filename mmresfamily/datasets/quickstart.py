"""Turn real Fashion-MNIST items into a small COCO-format detection / segmentation dataset
(`tools/make_quickstart_data.py`).

    python tools/make_quickstart_data.py [--out data/quickstart] [--train 2000] [--val 200]

Each canvas holds 1-4 items at varied scale and position on a textured background, with boxes,
instance masks (from the item pixels, RLE) and a per-pixel class map (0 = background, k = class
k). Train canvases use Fashion-MNIST's train split and val canvases its test split, so no item is
shared. A fixed seed gives byte-identical files on every run.

Layout: OUT/{train,val}/images/*.png, OUT/{train,val}/seg/*.png,
OUT/annotations/instances_{train,val}.json
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..utils.cli import int_at_least
from .fashion_mnist import CLASSES, FashionMnistFileError, load_fashion_mnist

ITEM_THRESHOLD = 24  # an item pixel is one brighter than this (the backgrounds are 0)
# items are size/5 .. size/2 wide and kept from 16 mask pixels: smaller canvases hold none
MIN_SIZE = 32


def make_canvas(rng, images, labels, size, max_items):
    """One canvas: (rgb image, list of (label, binary mask))."""
    base = rng.integers(20, 90)
    texture = cv2.GaussianBlur(rng.normal(0, 25, (size // 8, size // 8, 3)), (3, 3), 0)
    canvas = np.clip(base + cv2.resize(texture, (size, size)), 0, 255)
    occupied = np.zeros((size, size), bool)
    items = []
    for _ in range(rng.integers(1, max_items + 1)):
        idx = rng.integers(len(images))
        side = int(rng.integers(size // 5, size // 2))
        item = cv2.resize(images[idx], (side, side), interpolation=cv2.INTER_LINEAR)
        mask = item > ITEM_THRESHOLD
        for _ in range(10):  # find a place that does not hide more than 20% of an earlier item
            y, x = rng.integers(0, size - side + 1, 2)
            overlap = occupied[y:y + side, x:x + side] & mask
            if overlap.sum() <= 0.2 * mask.sum():
                break
        else:
            continue
        full = np.zeros((size, size), bool)
        full[y:y + side, x:x + side] = mask
        tint = rng.uniform(0.6, 1.0, 3) * rng.uniform(0.8, 1.25)
        region = canvas[y:y + side, x:x + side]
        region[mask] = np.clip(item[mask, None] * tint, 0, 255)
        # later items cover earlier ones: remove covered pixels from earlier masks
        items = [(label, m & ~full) for label, m in items]
        occupied |= full
        items.append((int(labels[idx]), full))
    items = [(label, m) for label, m in items if m.sum() >= 16]
    return canvas.astype(np.uint8), items


def build_split(out, split, source, count, size, max_items, seed):
    """`source`: (images, labels) of the Fashion-MNIST split the canvases draw from."""
    images, labels = source
    rng = np.random.default_rng(seed)
    (out / split / 'images').mkdir(parents=True, exist_ok=True)
    (out / split / 'seg').mkdir(parents=True, exist_ok=True)
    coco = dict(images=[], annotations=[],
                categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)])
    for image_id in range(1, count + 1):
        canvas, items = make_canvas(rng, images, labels, size, max_items)
        name = f'{image_id:06d}.png'
        cv2.imwrite(str(out / split / 'images' / name), canvas[:, :, ::-1])
        semantic = np.zeros((size, size), np.uint8)
        for label, m in items:
            semantic[m] = label + 1
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=image_id, category_id=label + 1,
                bbox=[x, y, w, h], area=float(m.sum()), iscrowd=0,
                segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
        cv2.imwrite(str(out / split / 'seg' / name), semantic)
        coco['images'].append(dict(id=image_id, file_name=name, height=size, width=size))
    (out / 'annotations').mkdir(parents=True, exist_ok=True)
    with open(out / 'annotations' / f'instances_{split}.json', 'w') as f:
        json.dump(coco, f)
    return len(coco['annotations'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=Path('data/quickstart'))
    parser.add_argument('--train', type=int_at_least(1), default=2000,
                        help='number of train canvases')
    parser.add_argument('--val', type=int_at_least(1), default=200, help='number of val canvases')
    parser.add_argument('--size', type=int_at_least(MIN_SIZE, 'items are a fifth to a half of '
                        'the canvas wide'), default=128, help='canvas side in pixels')
    parser.add_argument('--max-items', type=int_at_least(1), default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--fashion-mnist', help='directory with the four Fashion-MNIST idx .gz '
                        'files (default: the Debian package dataset-fashion-mnist)')
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f'--out {args.out} is a file, not a directory')
    try:
        images = {source: load_fashion_mnist(source, args.fashion_mnist)
                  for source in ('train', 'test')}
    except (FileNotFoundError, FashionMnistFileError) as err:
        parser.error(f'--fashion-mnist: {err}')
    for split, source, count, seed in (('train', 'train', args.train, args.seed),
                                       ('val', 'test', args.val, args.seed + 1)):
        n = build_split(args.out, split, images[source], count, args.size, args.max_items, seed)
        print(f'{split}: {count} images, {n} instances -> {args.out / split}')
