"""Small builders shared by every family: DCN config resolution and mmcv plugin insertion."""
import copy
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_plugin_layer

from ...errors import ArgumentTypeError, InvalidArgumentError
from .deform_conv import torch_op_layer
from .layer_cfg import check_dcn, resolve_layer_cfg

PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


def resolve_dcn(dcn: Optional[dict], stride: int = 1):
    """Return the conv config to use for a 3x3 conv, or None for the block's plain conv.

    `fallback_on_stride` (mmdet) keeps strided convs plain. mmcv's DCN / DCNv2 become the same
    layers computed by a torch operator (layers/deform_conv.py: exportable, right for any memory
    format). The user's dict is copied, never mutated, so one config can serve many blocks and
    many models.
    """
    if dcn is None:
        return None
    dcn = copy.deepcopy(check_dcn(dcn))
    fallback_on_stride = dcn.pop('fallback_on_stride', False)
    if fallback_on_stride and stride > 1:
        return None
    dcn['type'] = torch_op_layer(resolve_layer_cfg('dcn', dcn, 'dcn'))
    return dcn


def conv_layer_cfg(conv_cfg, dcn, in_channels: int, stride: int = 1):
    """The config of a conv that `dcn` may make deformable: dcn's where it applies, else
    conv_cfg (mmdet refuses both on one conv)."""
    cfg = resolve_dcn(dcn, stride)
    if cfg is None:
        return conv_cfg
    if conv_cfg is not None:
        raise InvalidArgumentError('conv_cfg and dcn cannot be combined on the same conv: set '
                                   'one of them')
    deform_groups = cfg.get('deform_groups', 1)
    if in_channels % deform_groups:
        raise InvalidArgumentError(f'dcn deform_groups={deform_groups} must divide the '
                                   f'{in_channels} input channels of a deformable conv')
    return cfg


def build_conv3x3(conv_cfg, dcn, in_channels, out_channels, stride=1, dilation=1, groups=1):
    """3x3 conv with padding = dilation: a deformable one when `dcn` resolves to a config."""
    cfg = conv_layer_cfg(conv_cfg, dcn, in_channels, stride)
    try:
        return build_conv_layer(cfg, in_channels, out_channels, 3, stride=stride,
                                padding=dilation, dilation=dilation, groups=groups, bias=False)
    except TypeError as err:  # an option the layer does not take
        raise ArgumentTypeError(f'{"conv_cfg" if cfg is conv_cfg else "dcn"} {cfg!r} cannot '
                                f'build a 3x3 conv: {err}') from err


def check_plugins(plugins) -> List[dict]:
    """mmdet's plugin list: dicts with `cfg` (the layer config) and `position`, optionally
    `stages` (one bool per stage) and `postfix` (inside `cfg`, as mmdet writes it, or beside it)."""
    if plugins is None:
        return []
    if not isinstance(plugins, (list, tuple)):
        raise ArgumentTypeError(f'plugins must be a list of dicts like dict(cfg=dict(type=...), '
                                f'position=...); got {type(plugins).__name__}: {plugins!r}')
    for plugin in plugins:
        if not isinstance(plugin, dict) or 'cfg' not in plugin or 'position' not in plugin:
            raise InvalidArgumentError(f'each plugin needs "cfg" and "position" keys, got '
                                       f'{plugin!r}')
        if not isinstance(plugin['cfg'], dict):
            raise ArgumentTypeError(f'plugin "cfg" must be a dict with a "type" key; got '
                                    f'{plugin!r}')
        if plugin['position'] not in PLUGIN_POSITIONS:
            raise InvalidArgumentError(f'plugin position must be one of {PLUGIN_POSITIONS}, '
                                       f'got {plugin["position"]!r}')
    return list(plugins)


def build_stage_plugins(plugins: Optional[Sequence[dict]], stage_idx: int,
                        num_stages: int) -> List[dict]:
    """The plugin configs (mmdet format) that apply to stage `stage_idx`."""
    selected = []
    for plugin in check_plugins(plugins):
        plugin = dict(plugin)
        stages = plugin.pop('stages', None)
        if stages is not None and len(stages) != num_stages:
            raise InvalidArgumentError(f'plugin "stages" must have one bool per stage '
                                       f'(num_stages={num_stages}), got {stages!r}')
        if stages is None or stages[stage_idx]:
            selected.append(plugin)
    return selected


def plugin_postfix(plugin: dict):
    """mmdet reads a plugin's `postfix` from its `cfg`; the key beside `cfg` is accepted too."""
    inner, outer = plugin['cfg'].get('postfix'), plugin.get('postfix')
    if inner is not None and outer is not None and inner != outer:
        raise InvalidArgumentError(f'plugin postfix given twice with different values (in cfg: '
                                   f'{inner!r}, beside cfg: {outer!r}); give it once, inside cfg '
                                   f'as mmdet does')
    return inner if inner is not None else (outer if outer is not None else '')


def make_plugin_layers(module: nn.Module, plugins: Sequence[dict], position: str,
                       in_channels: int) -> List[str]:
    """Build the plugins at `position` as attributes of `module`; return their names in order."""
    names = []
    for plugin in plugins:
        if plugin['position'] != position:
            continue
        cfg = {k: v for k, v in plugin['cfg'].items() if k != 'postfix'}
        name, layer = build_plugin_layer(cfg, postfix=plugin_postfix(plugin),
                                         in_channels=in_channels)
        if hasattr(module, name):
            raise InvalidArgumentError(f'duplicate plugin name {name!r}: give each a distinct '
                                       f'"postfix"')
        module.add_module(name, layer)
        names.append(name)
    return names


def forward_plugins(module: nn.Module, x, names: Sequence[str]):
    for name in names:
        x = getattr(module, name)(x)
    return x
