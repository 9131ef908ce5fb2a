"""Exact re-parameterisations and layout choices for inference.

`optimize_for_inference(model, example)` is the deploy entry point: `fold_batchnorm`, then
channels_last execution -- weights converted once, each input converted on the way in and each
feature handed back as a standard contiguous tensor, so callers (mmcv ops such as RoIAlign index
NCHW memory directly) see no difference but speed. On a CPU the convolutions run oneDNN's NHWC
kernels without reordering every activation to and from NCHW. By default (`channels_last=None`)
a model with a module that computes in NCHW (`computes_in_nchw = True`: involution, hence
RedNet and DCDC) stays in NCHW: channels_last would reorder its activations twice per block,
which made RedNet's inference slower instead of faster (`tools/benchmark.py models --deploy`
measures it). `compile=True` then hands the
folded model to TorchInductor with frozen weights (`nn.Module.compile` with Inductor's
`freezing`, static shapes): the weights become constants, so Inductor pre-packs them for
oneDNN, fuses each conv with the activation/add that follows, and generates one C++ loop for the
elementwise chains eager runs op by op (the norm + ReLU of pre-activation blocks, which no
folding removes). It costs a compile per model and input shape, hence opt-in; every later call
of that shape runs the compiled graph.

`fold_batchnorm(model, example)` folds every eval-mode BatchNorm that directly consumes a plain
convolution's output into that convolution (w' = w * g / s, b' = beta + (b - mean) * g / s with
s = sqrt(var + eps)) and replaces the norm with Identity. Pairs are found by running the model
once and matching tensors (a norm whose input *is* a conv's output, not modified in place since),
so it works for every family
without per-family code; norms that follow an activation or a concatenation (pre-activation
blocks, DenseNet) are left alone because folding them would not be exact. The folded model is
checked against the original on `example` before it is returned.
"""
import copy
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .errors import ArgumentTypeError, check_flag


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> List[Tuple[str, str]]:
    names = {m: n for n, m in model.named_modules()}
    produced, keep_alive, pairs, calls = {}, [], [], {}

    def after_conv(module, args, out):
        calls[module] = calls.get(module, 0) + 1
        # the version counter tells an untouched output from one modified in place since (a
        # residual `out += identity` keeps the object but is no longer the conv's output)
        produced[id(out)] = (module, out._version)
        keep_alive.append(out)  # ids stay unique while we look

    def before_norm(module, args):
        calls[module] = calls.get(module, 0) + 1
        conv, version = produced.get(id(args[0]), (None, None))
        if conv is not None and args[0]._version == version:
            pairs.append((names[conv], names[module]))

    hooks = []
    for m in model.modules():
        if type(m) is nn.Conv2d:  # exact: deformable/other conv subclasses are not folded
            hooks.append(m.register_forward_hook(after_conv))
        elif isinstance(m, _BatchNorm):
            hooks.append(m.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    by_name = dict(model.named_modules())
    # a module called more than once (shared) or a conv feeding two norms cannot be folded
    convs = [c for c, _ in pairs]
    return [(c, n) for c, n in pairs
            if calls[by_name[c]] == 1 and calls[by_name[n]] == 1 and convs.count(c) == 1]


@torch.no_grad()
def _fold(conv: nn.Conv2d, norm: _BatchNorm):
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps) if norm.affine else \
        1 / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias if norm.affine else torch.zeros_like(scale)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
    new_bias = shift + (bias - norm.running_mean) * scale
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias)
    else:
        conv.bias.copy_(new_bias)


def _set_submodule(model: nn.Module, name: str, module: nn.Module):
    parent, _, child = name.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, child, module)


def fold_batchnorm(model: nn.Module, example: torch.Tensor, rtol: float = 1e-4,
                   inplace: bool = False) -> nn.Module:
    """Return an eval-mode copy of `model` with conv+BN pairs folded (see the module doc)."""
    reference = model.eval()
    with torch.no_grad():
        expected = reference(example) if not inplace else None
    model = model if inplace else copy.deepcopy(model)
    _fold_in_place(model, example)
    if expected is not None:
        _check_unchanged(model, example, expected, rtol,
                         'BN folding (this model has a conv/norm pattern the folder mistook)')
    return model


def _fold_in_place(model: nn.Module, example: torch.Tensor):
    model.eval()
    pairs = _conv_bn_pairs(model, example)
    for conv_name, norm_name in pairs:
        _fold(model.get_submodule(conv_name), model.get_submodule(norm_name))
        # eval like the rest: a training-mode Identity would make a compiled model recompile
        # when the caller next calls eval()
        _set_submodule(model, norm_name, nn.Identity().eval())
    model.folded_pairs = pairs


def _check_unchanged(model, example, expected, rtol, what):
    with torch.no_grad():
        got = model(example)
    for a, b in zip(_as_tuple(got), _as_tuple(expected)):
        diff = ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
        if diff > rtol:
            raise RuntimeError(f'{what} changed the output by {diff:.2e} (> {rtol})')


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, )


def _to_channels_last(module, args):
    return (args[0].contiguous(memory_format=torch.channels_last), ) + tuple(args[1:])


def _to_contiguous(module, args, out):
    if isinstance(out, (tuple, list)):
        return type(out)(o.contiguous() for o in out)
    return out.contiguous()


def optimize_for_inference(model: nn.Module, example: torch.Tensor,
                           channels_last: Optional[bool] = None, rtol: float = 1e-4,
                           compile: bool = False) -> nn.Module:
    """An eval-mode copy of `model` for inference: BN folded, run in channels_last, compiled.

    The result keeps the model's class and attributes (`out_channels`, `feature_info`); its
    outputs equal the original's within `rtol` (checked on `example`) and are contiguous NCHW
    tensors whatever the layout inside. `channels_last`: None (default) chooses it unless a
    module computes in NCHW (see the module doc), False gives `fold_batchnorm` alone. The
    choice is recorded as `deploy_memory_format` on the result. `compile=True` compiles it
    in place (`nn.Module.compile`, see the module doc; `deploy_compiled` says so), for the
    shape of `example` first, under `torch.no_grad()`: pass an example of the shape you will
    run and call it under no_grad too (another shape or grad mode compiles once more). Its
    parameters are frozen (no gradients): the result is for inference only.
    """
    if channels_last is not None and not isinstance(channels_last, bool):
        raise ArgumentTypeError(f'channels_last must be True, False or None (choose by the '
                                f'model); got {channels_last!r}')
    check_flag('compile', compile)
    if channels_last is None:
        channels_last = not any(getattr(m, 'computes_in_nchw', False) for m in model.modules())
    with torch.no_grad():
        expected = model.eval()(example)
    model = copy.deepcopy(model)
    _fold_in_place(model, example)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        model.register_forward_pre_hook(_to_channels_last)
        model.register_forward_hook(_to_contiguous)
    model.deploy_memory_format = 'channels_last' if channels_last else 'contiguous'
    model.deploy_compiled = compile
    if compile:
        model.requires_grad_(False)  # inference only: frozen weights are constants
        # static shapes: a detector's few input sizes each get their own specialised graph.
        # Layout optimisation off for NCHW models: Inductor would put their convs in
        # channels_last and reorder around every NCHW-only op (RedNet: 0.95x the eager deploy)
        model.compile(dynamic=False,
                      options={'freezing': True, 'layout_optimization': channels_last})
    # one check of the whole deploy path against the original (for `compile`, its first call)
    _check_unchanged(model, example, expected, rtol,
                     'BN folding / channels_last execution / compilation')
    return model
