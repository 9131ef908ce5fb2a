"""Post-training static int8 quantisation of backbones and classifiers (PT2E).

torch 2.14 has no `torch.ao` PT2E flow any more; torchao's is used: the model is captured with
`torch.export(strict=True)` (non-strict capture gave "Input partition has more than one output
node", torchvision's ResNet too), annotated by `X86InductorQuantizer` (int8 activations per
tensor, int8 weights per channel, the conv + BN (+ ReLU / add) patterns Inductor fuses),
calibrated on real images, converted, and run by Inductor with frozen weights, which lowers the
quantize / dequantize pairs to oneDNN int8 kernels. Operators the quantizer has no pattern for
(the involution aggregation, DCDC's per-sample kernels, split attention's softmax) stay fp32
between them.

`quantize_pt2e(model, example, batches)` is the whole flow; `classifier_logits(classifier)` turns an
mmpretrain ImageClassifier into a tensor -> logits module it can take; `fashion_mnist_batches`
reads the real images a Fashion-MNIST classifier config trains and evaluates on.
"""
import time
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

import torch
import torch.nn as nn


def require_torchao():
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError as err:
        raise ImportError('int8 quantisation needs torchao (the `deploy` extra: pip install '
                          f'-e .[deploy], installed by tools/setup.sh): {err}') from None
    return (prepare_pt2e, convert_pt2e, X86InductorQuantizer,
            get_default_x86_inductor_quantization_config)


@torch.no_grad()
def quantize_pt2e(model: nn.Module, example: torch.Tensor,
                  calibration: Iterable[torch.Tensor]) -> nn.Module:
    """The int8 version of `model` (eval mode, fixed input shape of `example`): exported,
    annotated for x86 Inductor, calibrated on `calibration` batches and converted. Call it
    through `compile_for_cpu` to run real int8 kernels (eager runs the reference q/dq graph)."""
    prepare_pt2e, convert_pt2e, quantizer_cls, default_config = require_torchao()
    model = model.eval()
    exported = torch.export.export(model, (example, ), strict=True).module()
    quantizer = quantizer_cls().set_global(default_config())
    prepared = prepare_pt2e(exported, quantizer)
    seen = 0
    for batch in calibration:
        prepared(batch)
        seen += 1
    if not seen:
        raise ValueError('quantize_pt2e needs at least one calibration batch')
    return convert_pt2e(prepared)


def compile_for_cpu(model: nn.Module) -> nn.Module:
    """Inductor with frozen weights: int8 (or fp32) convs become pre-packed oneDNN kernels."""
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    return torch.compile(model, dynamic=False)


class ClassifierLogits(nn.Module):
    """An mmpretrain ImageClassifier as `normalised images -> logits` (backbone, neck, head)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.backbone, self.neck, self.head = classifier.backbone, classifier.neck, \
            classifier.head

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))


def classifier_logits(config: str, checkpoint: str) -> Tuple[nn.Module, object]:
    """(ClassifierLogits in eval mode with the checkpoint's weights, the mmengine Config)."""
    from mmengine.registry import MODELS, init_default_scope

    from .utils.launch import load_config
    from .utils.pretrained import load_pretrained
    cfg = load_config(config)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    classifier = MODELS.build(cfg.model)
    load_pretrained(classifier, checkpoint)  # strict: every tensor of the classifier
    return ClassifierLogits(classifier).eval(), cfg


def fashion_mnist_batches(cfg, split: str, batch_size: int, limit: int = None
                          ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """(normalised images, labels) batches of a Fashion-MNIST classifier config's `split`
    ('train' or 'test'), through the config's test pipeline (no augmentation) and data
    preprocessor. `limit`: the first N images."""
    from mmengine.runner import Runner
    from mmpretrain.models import ClsDataPreprocessor
    loader_cfg = dict(cfg.val_dataloader)
    loader_cfg['dataset'] = dict(loader_cfg['dataset'], split=split, num_samples=limit)
    loader_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False))
    loader = Runner.build_dataloader(loader_cfg)
    preprocessor = ClsDataPreprocessor(**cfg.data_preprocessor)
    batches = []
    for data in loader:
        data = preprocessor(data, False)
        labels = torch.tensor([s.gt_label.item() for s in data['data_samples']])
        batches.append((data['inputs'], labels))
    return batches


@torch.no_grad()
def top1(model: nn.Module, batches) -> float:
    """Top-1 accuracy (%) over `batches` of (images, labels)."""
    right = total = 0
    for images, labels in batches:
        right += (model(images).argmax(1) == labels).sum().item()
        total += len(labels)
    return 100.0 * right / total


@torch.no_grad()
def images_per_second(model: nn.Module, x: torch.Tensor, repeats: int = 10,
                      warmup: int = 3) -> float:
    """Median throughput of `model(x)` over `repeats` timed calls after `warmup` calls."""
    from .benchmark.timing import timed
    return x.shape[0] / timed(lambda: model(x), x.device, warmup, repeats)


def int8_weight_share(quantized: nn.Module) -> Tuple[int, int]:
    """(convs / linears whose weights are int8, all of them) in a converted PT2E graph."""
    graph = quantized.graph
    weights_dq = sum(1 for n in graph.nodes
                     if 'dequantize_per_channel' in str(n.target))
    layers = sum(1 for n in graph.nodes
                 if n.op == 'call_function' and str(n.target).startswith(
                     ('aten.conv2d', 'aten.linear')))
    return weights_dq, layers


KERNELS = ('reference', 'inductor')


def fashion_mnist_row(config: str, checkpoint: str, batch_size: int = 250,
                      calibration_images: int = 1000, kernels: str = 'reference') -> dict:
    """fp32 vs int8 top-1 of one trained Fashion-MNIST classifier on the 10,000 test images,
    calibrated on the first `calibration_images` training images. `kernels`: 'reference' runs
    the converted graph (int8 rounding as quantize / dequantize ops, eager), 'inductor' the
    oneDNN int8 kernels Inductor lowers it to (minutes of compilation per model on 2 cores)."""
    if kernels not in KERNELS:
        raise ValueError(f'kernels must be one of {KERNELS}; got {kernels!r}')
    model, cfg = classifier_logits(config, checkpoint)
    test = fashion_mnist_batches(cfg, 'test', batch_size)
    calibration = [images for images, _ in
                   fashion_mnist_batches(cfg, 'train', batch_size, limit=calibration_images)]
    start = time.perf_counter()
    quantized = quantize_pt2e(model, test[0][0], calibration)
    int8_layers, layers = int8_weight_share(quantized)
    run = compile_for_cpu(quantized) if kernels == 'inductor' else quantized
    fp32, int8 = top1(model, test), top1(run, test)
    return dict(fp32_top1=round(fp32, 2), int8_top1=round(int8, 2),
                drop=round(fp32 - int8, 2), int8_layers=f'{int8_layers}/{layers}',
                kernels=kernels, quantize_s=round(time.perf_counter() - start, 1))


def speed_rows(backbone_cfg: dict, batch: int = 8, size: int = 224, repeats: int = 10,
               calibration_batches: int = 4) -> List[dict]:
    """img/s of a backbone: fp32 eager, fp32 Inductor (frozen weights), int8 Inductor.
    Random weights with measured BN statistics and random calibration images: speed does not
    depend on the values."""
    from .registry import MODELS
    from .testing import calibrate_norms_
    model = calibrate_norms_(MODELS.build(backbone_cfg)).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen)
    calibration = [torch.randn(batch, 3, size, size, generator=gen)
                   for _ in range(calibration_batches)]
    rows = [dict(impl='fp32 eager', img_s=images_per_second(model, x, repeats))]
    rows.append(dict(impl='fp32 inductor', img_s=images_per_second(
        compile_for_cpu(model), x, repeats)))
    quantized = compile_for_cpu(quantize_pt2e(model, x, calibration))
    rows.append(dict(impl='int8 inductor', img_s=images_per_second(quantized, x, repeats)))
    for row in rows:
        row['img_s'] = round(row['img_s'], 2)
    return rows


def latest_checkpoint(work_dir) -> str:
    found = sorted(Path(work_dir).glob('iter_*.pth'), key=lambda p: int(p.stem.split('_')[1]))
    if not found:
        raise FileNotFoundError(f'no iter_*.pth checkpoint in {work_dir}: train the config first '
                                f'(python tools/pretrain_fashion_mnist.py --work-dir ...)')
    return str(found[-1])


def accuracy_markdown(rows: Sequence[dict]) -> str:
    """The int8 accuracy table (docs/quantization/fashion_mnist.md, copied into
    docs/benchmarks.md) from its CSV rows, by model name."""
    lines = ['| model | fp32 top-1 (%) | int8 top-1 (%) | drop (points) | int8 weights | '
             'int8 run by |', '|---|---|---|---|---|---|']
    lines += [f'| {r["model"]} | {r["fp32_top1"]} | {r["int8_top1"]} | {r["drop"]} | '
              f'{r["int8_layers"]} | {r["kernels"]} |'
              for r in sorted(rows, key=lambda r: r['model'])]
    return '\n'.join(lines) + '\n'


def speed_markdown(rows: Sequence[dict]) -> str:
    """The int8 speed table (docs/quantization/speed.md, copied into docs/benchmarks.md)."""
    int8 = float(next(r['img_s'] for r in rows if r['impl'] == 'int8 inductor'))
    lines = ['| impl | img/s | int8 inductor / this row |', '|---|---|---|']
    lines += [f'| {r["impl"]} | {r["img_s"]} | {int8 / float(r["img_s"]):.2f}x |' for r in rows]
    return '\n'.join(lines) + '\n'


def fashion_mnist_table(configs, work_dir, out, kernels: str = 'reference') -> List[dict]:
    """fashion_mnist_row for every config (its checkpoint: the latest in WORK_DIR/NAME) ->
    OUT.csv and OUT.md; rows already in OUT.csv are kept (an interrupted table resumes)."""
    from .pretrain.table import classifier_name
    from .utils.csv_table import read_csv, write_csv
    out = Path(out)
    csv_path = out.with_suffix('.csv')
    rows = read_csv(csv_path)
    done = {r['model'] for r in rows}
    for config in configs:
        name = classifier_name(config)
        if name in done:
            continue
        checkpoint = latest_checkpoint(Path(work_dir) / name)
        rows.append(dict(model=name, checkpoint=Path(checkpoint).name,
                         **fashion_mnist_row(str(config), checkpoint, kernels=kernels)))
        print(rows[-1], flush=True)
        write_csv(csv_path, rows)
    out.with_suffix('.md').write_text(accuracy_markdown(rows))
    return rows
