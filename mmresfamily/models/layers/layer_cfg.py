"""Checks of the layer config dicts (`conv_cfg`, `norm_cfg`, `dcn`) before mmcv builds from them.

mmcv resolves a dict's `type` in MMEngine's registry at the moment it builds a layer; a misspelt
type fails there with "Cannot find None in registry", a non-dict with "cfg must be a dict", and
a layer that cannot process (N, C, H, W) features only at forward. These checks resolve the type
the same way (same registry, same scope) and say which argument is wrong and what is allowed.
"""
import inspect

import torch.nn as nn
from mmengine.registry import MODELS

from ...errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    UnknownChoiceError,
    check_flag,
    check_int,
)

# kind -> (example config, base classes listed as the registered choices in messages)
KINDS = {
    'conv': ("dict(type='Conv2d')", (nn.modules.conv._ConvNd, )),
    'norm': ("dict(type='BN')", (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)),
    'dcn': ("dict(type='DCNv2', deform_groups=1)", ()),
}


def _applies_to_2d(kind: str, cls) -> bool:
    """False for registered layers that build fine but fail on (N, C, H, W) features at forward,
    or change their meaning (a transposed conv upsamples where a backbone downsamples)."""
    if kind == 'conv':
        return not issubclass(cls, (nn.Conv1d, nn.Conv3d, nn.modules.conv._ConvTransposeNd))
    if kind == 'norm':  # exact classes: LayerNorm subclasses such as LN2d permute to channels
        return cls not in (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm3d, nn.InstanceNorm1d,
                           nn.InstanceNorm3d)
    return True


def _registered_names(kind: str, registry) -> list:
    bases = KINDS[kind][1]
    names = []
    for name, cls in registry.module_dict.items():
        if not inspect.isclass(cls) or not _applies_to_2d(kind, cls):
            continue
        if issubclass(cls, bases) if bases else 'DeformConv' in cls.__name__:
            names.append(name)
    return names


def resolve_layer_cfg(arg: str, cfg, kind: str):
    """The layer class that `cfg` (the argument `arg`, a `kind` of 'conv'/'norm'/'dcn') names."""
    example = KINDS[kind][0]
    if not isinstance(cfg, dict):
        raise ArgumentTypeError(f'{arg} must be a dict with a "type" key, e.g. {example}; '
                                f'got {cfg!r}')
    if 'type' not in cfg:
        raise InvalidArgumentError(f'{arg} needs a "type" key, e.g. {example}; got {cfg!r}')
    layer_type = cfg['type']
    if kind == 'dcn':
        import mmcv.ops  # noqa: F401  registers DCN/DCNv2 in MMEngine's root registry
    if inspect.isclass(layer_type):
        cls = layer_type
    elif isinstance(layer_type, str):
        with MODELS.switch_scope_and_registry(None) as registry:
            cls = registry.get(layer_type)
        if cls is None:
            allowed = ', '.join(repr(n) for n in _registered_names(kind, registry))
            raise UnknownChoiceError(f'{arg} type {layer_type!r} is not a registered {kind} layer '
                                     f'(registered: {allowed}); got {cfg!r}')
    else:
        raise ArgumentTypeError(f'{arg} "type" must be a registered layer name or a class, '
                                f'e.g. {example}; got {cfg!r}')
    if not _applies_to_2d(kind, cls):
        raise InvalidArgumentError(f'{arg} type {layer_type!r} ({cls.__name__}) does not apply to '
                                   f'the (N, C, H, W) features of a backbone; got {cfg!r}')
    return cls


def check_conv_cfg(conv_cfg):
    """`conv_cfg` is None (nn.Conv2d) or a dict naming a registered 2D conv layer."""
    if conv_cfg is not None:
        resolve_layer_cfg('conv_cfg', conv_cfg, 'conv')
    return conv_cfg


def check_dcn(dcn):
    """`dcn` is None or a dict naming a registered (deformable) conv layer, with mmdet's options:
    `deform_groups` a positive int, `fallback_on_stride` a bool."""
    if dcn is not None:
        resolve_layer_cfg('dcn', dcn, 'dcn')
        if 'deform_groups' in dcn:
            check_int('dcn deform_groups', dcn['deform_groups'])
        if 'fallback_on_stride' in dcn:
            check_flag('dcn fallback_on_stride', dcn['fallback_on_stride'])
    return dcn
