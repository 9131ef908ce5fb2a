"""Train a backbone + global average pool + linear head on real Fashion-MNIST (plain PyTorch;
`tools/train_fashion_mnist.py`).

    python tools/train_fashion_mnist.py --type RedNet --depth 26 --iters 300 --size 32
    python tools/train_fashion_mnist.py --model-cfg "{'type': 'DCDCResNet', 'depth': 50}"
    python tools/train_fashion_mnist.py --model-cfg configs/x.py   # its model.backbone / backbone

A sanity check that a backbone learns, not a benchmark: images are resized to --size, one
channel (the backbone is built with in_channels=1), AdamW with a cosine schedule, BN statistics
recomputed with the final weights before testing (--bn-batches; short runs need it). Prints the
running train loss, then the final train loss (mean of the last 10% of iterations), the accuracy
on the first --test-images test images, and the wall time; --json writes the same as a file.
"""
import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .datasets import load_fashion_mnist
from .registry import MODELS
from .utils.cli import is_literal_dict, literal_value
from .utils.precise_bn import recompute_bn_statistics_

MEAN, STD = 0.286, 0.353  # Fashion-MNIST training-set pixel statistics
NUM_CLASSES = 10


class Classifier(nn.Module):
    """backbone (last stage only) -> global average pool -> linear."""

    def __init__(self, backbone_cfg):
        super().__init__()
        self.backbone = MODELS.build(dict(backbone_cfg, in_channels=1, out_indices=(-1, )))
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
        try:
            self.backbone.init_weights()
        finally:
            logger.setLevel(level)
        self.head = nn.Linear(self.backbone.out_channels[-1], NUM_CLASSES)

    def forward(self, x):
        feature = self.backbone(x)[-1]
        return self.head(feature.mean(dim=(2, 3)))


def backbone_cfg_from(model_cfg, type_, depth):
    """The backbone dict: --model-cfg (inline dict or config file), then --type/--depth."""
    cfg = {}
    if model_cfg:
        if is_literal_dict(model_cfg):
            cfg = dict(literal_value(model_cfg))
        else:
            from mmengine.config import Config
            loaded = Config.fromfile(model_cfg)
            model = loaded.get('model', {})
            cfg = dict(model.get('backbone', loaded.get('backbone', model)))
    if type_:
        cfg['type'] = type_
    if depth:
        cfg['depth'] = depth
    if 'type' not in cfg:
        raise ValueError('name the backbone with --type or a "type" key in --model-cfg')
    if '.' not in cfg['type']:
        cfg['type'] = f'mmresfamily.{cfg["type"]}'
    return cfg


def prepare(images, size):
    """uint8 [N, 28, 28] -> normalised float [N, 1, size, size]."""
    x = torch.from_numpy(np.array(images)).float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    return x


def recalibrate_bn(model, images, batch_size, num_batches, generator):
    """BN statistics recomputed with the final weights on `num_batches` random training batches:
    after a short run the running averages still mix in statistics of much earlier weights, and
    eval-mode accuracy can sit near chance while train-mode accuracy is high."""
    if num_batches > 0:
        recompute_bn_statistics_(model, (
            images[torch.randint(len(images), (batch_size, ), generator=generator)]
            for _ in range(num_batches)))


@torch.no_grad()
def accuracy(model, images, labels, batch_size):
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        correct += (logits.argmax(1) == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def train(backbone_cfg, iters=300, batch_size=64, size=32, lr=2e-3, weight_decay=0.05,
          train_images=None, test_images=2000, bn_batches=20, seed=0, log_every=50,
          log=print):
    """Train and evaluate; returns a dict of the results (also used by the tests)."""
    start_time = time.time()
    torch.manual_seed(seed)
    images, labels = load_fashion_mnist('train')
    if train_images:
        images, labels = images[:train_images], labels[:train_images]
    x_train, y_train = prepare(images, size), torch.from_numpy(labels.astype('int64'))
    images, labels = load_fashion_mnist('test')
    x_test = prepare(images[:test_images], size)
    y_test = torch.from_numpy(labels[:test_images].astype('int64'))

    model = Classifier(backbone_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(1, iters // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1.0, (i + 1) / warmup) * 0.5 *
        (1 + math.cos(math.pi * min(i, iters) / iters)))
    generator = torch.Generator().manual_seed(seed)
    losses, order, cursor = [], torch.randperm(len(x_train), generator=generator), 0
    model.train()
    for it in range(iters):
        if cursor + batch_size > len(order):  # a new epoch
            order, cursor = torch.randperm(len(x_train), generator=generator), 0
        index = order[cursor:cursor + batch_size]
        cursor += batch_size
        loss = F.cross_entropy(model(x_train[index]), y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log and (it + 1) % log_every == 0:
            window = losses[-log_every:]
            log(f'iter {it + 1}/{iters}  loss {sum(window) / len(window):.4f}  '
                f'{time.time() - start_time:.0f}s', flush=True)
    tail = max(1, iters // 10)
    recalibrate_bn(model, x_train, batch_size, bn_batches, generator)
    return dict(backbone=backbone_cfg, iters=iters, batch_size=batch_size, size=size, lr=lr,
                first_loss=sum(losses[:tail]) / tail, final_loss=sum(losses[-tail:]) / tail,
                test_images=len(x_test), test_accuracy=accuracy(model, x_test, y_test,
                                                                 max(batch_size, 256)),
                wall_s=time.time() - start_time)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model-cfg', help='backbone dict literal, or a config file')
    parser.add_argument('--type', help='backbone type, e.g. RedNet (overrides --model-cfg)')
    parser.add_argument('--depth', type=int, help='backbone depth (overrides --model-cfg)')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--size', type=int, default=32, help='input resolution')
    parser.add_argument('--lr', type=float, default=2e-3, help='AdamW peak learning rate')
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--train-images', type=int, help='use only the first N train images')
    parser.add_argument('--test-images', type=int, default=2000)
    parser.add_argument('--bn-batches', type=int, default=20,
                        help='training batches to recompute BN statistics on before testing')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', type=Path, help='also write the results here')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = backbone_cfg_from(args.model_cfg, args.type, args.depth)
    except (ValueError, SyntaxError) as error:
        parser.error(str(error))
    result = train(cfg, iters=args.iters, batch_size=args.batch_size, size=args.size,
                   lr=args.lr, weight_decay=args.weight_decay, train_images=args.train_images,
                   test_images=args.test_images, bn_batches=args.bn_batches, seed=args.seed)
    print(f'{cfg["type"]}-{cfg.get("depth", "")}: {args.iters} iters x {args.batch_size} at '
          f'{args.size}px  final train loss {result["final_loss"]:.4f} (first '
          f'{result["first_loss"]:.4f})  test accuracy {result["test_accuracy"]:.4f} on '
          f'{result["test_images"]} images  wall {result["wall_s"]:.0f}s')
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result
