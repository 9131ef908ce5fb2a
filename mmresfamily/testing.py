"""Helpers for tests that compare mmresfamily backbones with reference implementations."""
import copy
from typing import Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .utils.precise_bn import recompute_bn_statistics_


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and BN statistic non-trivial random values (in place).

    Conv weights keep a fan-in scale so activations stay O(1) through deep nets; BN statistics
    and affine terms are far from their (0, 1) defaults, so a missed or misplaced norm shows.
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(shape):
        return torch.rand(shape, generator=gen)

    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.weight.copy_(0.5 + rand(m.weight.shape))
            m.bias.copy_(rand(m.bias.shape) - 0.5)
            m.running_mean.copy_(rand(m.running_mean.shape) - 0.5)
            m.running_var.copy_(0.5 + rand(m.running_var.shape))
        else:
            for name, p in m.named_parameters(recurse=False):
                if p.dim() > 1:
                    fan_in = p[0].numel()
                    p.copy_((rand(p.shape) * 2 - 1) * (3.0 / fan_in)**0.5)
                else:
                    p.copy_((rand(p.shape) - 0.5) * 0.2)
    return model


@torch.no_grad()
def calibrate_norms_(model: nn.Module, in_channels: int = 3, seed: int = 0) -> nn.Module:
    """Set BN statistics from train-mode passes over random images (in place), then eval().

    For dynamic-kernel nets (involution, DCDC), which multiply features by generated kernels:
    with randomize_'s statistics their activations overflow after a few blocks, while measured
    statistics keep them O(1) and are still far from the (0, 1) defaults.
    """
    gen = torch.Generator().manual_seed(seed)
    batches = (torch.randn(4, in_channels, 64, 64, generator=gen) for _ in range(2))
    return recompute_bn_statistics_(model, batches).eval()


def computes_dynamic_kernels(model: nn.Module) -> bool:
    """Involution / DCDC layers (their operators declare `computes_in_nchw`)."""
    return any(getattr(m, 'computes_in_nchw', False) for m in model.modules())


def default_init_calibrated_(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model's own `init_weights` (quietly, from `seed`: every process that calls it gets the
    same weights), then `calibrate_norms_`: what keeps the features of deep dynamic-kernel nets
    O(1) with random weights (DCDC-ResNet-50 reached inf / NaN by layer4 with measured
    statistics alone)."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model.init_weights()
    finally:
        logger.setLevel(level)
    return calibrate_norms_(model, seed=seed)


def relative_max_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| / max |ref| (the tolerance unit of the equivalence tests)."""
    if ours.shape != ref.shape:
        raise AssertionError(f'shape mismatch: ours {tuple(ours.shape)} vs ref {tuple(ref.shape)}')
    return ((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def assert_features_close(ours: Sequence[torch.Tensor], ref: Sequence[torch.Tensor],
                          rtol: float = 1e-5):
    assert len(ours) == len(ref), f'{len(ours)} features vs {len(ref)}'
    for i, (a, b) in enumerate(zip(ours, ref)):
        diff = relative_max_diff(a, b)
        assert diff <= rtol, f'feature {i}: max abs diff {diff:.3g} x max|ref| > {rtol}'


def stage_outputs(model: nn.Module, module_names: Sequence[str], x: torch.Tensor):
    """Run `model(x)` and return the outputs of the named submodules (forward hooks)."""
    captured = {}
    handles = [model.get_submodule(name).register_forward_hook(
        lambda mod, inp, out, name=name: captured.__setitem__(name, out))
        for name in module_names]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return [captured[name] for name in module_names]


def stage_taps(model: nn.Module, module_names: Sequence[str]):
    """`x -> stage_outputs(model, module_names, x)`: a reference's features at named modules."""
    return lambda x: stage_outputs(model, module_names, x)


def params_with_head(backbone, num_classes: int = 1000) -> int:
    """Parameter count as published for classifiers: backbone + linear head on the last stage."""
    last = backbone.feature_info[-1]['num_chs']
    return sum(p.numel() for p in backbone.parameters()) + last * num_classes + num_classes


def stage_of_parameter(model, name: str):
    """The stage index a parameter belongs to (None: stem). PreResNet's `out_normK` goes with
    stage K - 1."""
    if name.startswith('out_norm'):
        return int(name[len('out_norm')]) - 1
    return next((i for i, s in enumerate(model.stage_names) if name.startswith(s + '.')), None)


def assert_frozen_stages(model, frozen: int):
    """mmdet semantics after `model.train()`: stem + stages < frozen have no gradient and stay
    in eval mode; the next stage trains."""
    model.train()
    frozen_mods = model.frozen_modules()
    frozen_params = {id(p) for m in frozen_mods for p in m.parameters()}
    assert frozen_params, 'stem parameters must be frozen from frozen_stages=0'
    for name, p in model.named_parameters():
        stage = stage_of_parameter(model, name)
        expect_frozen = stage is None or stage < frozen
        assert p.requires_grad != expect_frozen, name
        assert (id(p) in frozen_params) == expect_frozen, name
    for m in frozen_mods:
        assert not any(sub.training for sub in m.modules()), 'frozen modules stay in eval'
    assert all(m.training for m in getattr(model, model.stage_names[frozen]).modules())


def assert_norm_eval(build, x):
    """`build(norm_eval=True)` keeps every BatchNorm in eval mode in training (a forward leaves
    the running statistics unchanged); `build(norm_eval=False)` trains them. Returns the first."""
    model = build(norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    before = [m.running_mean.clone() for m in bns]
    model(x)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    trained = build(norm_eval=False).train()
    assert all(m.training for m in trained.modules() if isinstance(m, _BatchNorm))
    return model


def assert_dcn_stages(build, x):
    """`build(dcn=DCNv2, stage_with_dcn=(False, False, True, True))`: deformable convs in the last
    two stages only, the caller's dcn dict left as it was, offsets zero-initialised (each conv
    starts as a plain one) and trained by a backward of `model(x)`. Returns (model, the
    deformable convs by name)."""
    from mmcv.ops import ModulatedDeformConv2d
    dcn = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)
    dcn_copy = copy.deepcopy(dcn)
    model = build(dcn=dcn, stage_with_dcn=(False, False, True, True))
    assert dcn == dcn_copy, 'the user dcn dict must not be mutated'
    model.init_weights()
    dcn_layers = {n: m for n, m in model.named_modules() if isinstance(m, ModulatedDeformConv2d)}
    last_two = tuple(f'{name}.' for name in model.stage_names[2:])
    assert dcn_layers and all(n.startswith(last_two) for n in dcn_layers)
    assert all(m.conv_offset.weight.abs().sum() == 0 for m in dcn_layers.values())
    model.train()
    sum(o.mean() for o in model(x)).backward()
    assert all(m.conv_offset.weight.grad is not None and
               torch.isfinite(m.conv_offset.weight.grad).all() for m in dcn_layers.values())
    return model, dcn_layers


def assert_with_cp_equivalent(build, x):
    """`build(with_cp=...)` gives the same outputs (exactly) and gradients with checkpointing.
    BN statistics are frozen (norm_eval): a recomputed forward would update them twice."""
    plain = build(with_cp=False, norm_eval=True)
    plain.init_weights()
    ckpt = build(with_cp=True, norm_eval=True)
    ckpt.load_state_dict(plain.state_dict())
    results = []
    for model in (plain, ckpt):
        model.train()
        model.zero_grad()
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results.append(([o.detach() for o in outs],
                        {n: p.grad.clone() for n, p in model.named_parameters()
                         if p.grad is not None}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7)
    return ckpt


def assert_converted_features_equal(tmp_path, source: str, name: str, checkpoint, reference,
                                    rtol: float = 1e-5):
    """Save `checkpoint`, convert it as `python -m mmresfamily convert` does, build the backbone
    from the written `backbone_cfg`, load the converted weights strictly, and check its features
    of a random 64x64 image against `reference(image)`. Returns (model, converted file)."""
    from .cli import main as cli
    from .registry import MODELS
    src, dst = tmp_path / 'src.pth', tmp_path / 'ours.pth'
    torch.save(checkpoint, src)
    cli(['convert', source, name, str(src), str(dst)])
    converted = torch.load(dst, weights_only=True)
    ours = MODELS.build(converted['meta']['backbone_cfg']).eval()
    ours.load_state_dict(converted['state_dict'], strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_features_close(ours(x), reference(x), rtol=rtol)
    return ours, converted
