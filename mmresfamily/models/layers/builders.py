"""Small builders shared by every family: DCN config resolution and mmcv plugin insertion."""
import copy
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_plugin_layer

PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


def resolve_dcn(dcn: Optional[dict], stride: int = 1):
    """Return the conv config to use for a 3x3 conv, or None for the block's plain conv.

    `fallback_on_stride` (mmdet) keeps strided convs plain. The user's dict is copied, never
    mutated, so one config can serve many blocks and many models.
    """
    if dcn is None:
        return None
    if not isinstance(dcn, dict) or 'type' not in dcn:
        raise TypeError(f'dcn must be None or a dict with a "type" key (e.g. DCNv2), got {dcn!r}')
    dcn = copy.deepcopy(dcn)
    fallback_on_stride = dcn.pop('fallback_on_stride', False)
    if fallback_on_stride and stride > 1:
        return None
    if dcn['type'] in ('DCN', 'DCNv2'):
        import mmcv.ops  # noqa: F401  registers DCN/DCNv2 in MMEngine's root registry
    return dcn


def build_conv3x3(conv_cfg, dcn, in_channels, out_channels, stride=1, dilation=1, groups=1):
    """3x3 conv with padding = dilation: a deformable one when `dcn` resolves to a config."""
    cfg = resolve_dcn(dcn, stride)
    if cfg is not None and conv_cfg is not None:
        raise ValueError('conv_cfg and dcn cannot be combined on the same conv: set one of them')
    return build_conv_layer(cfg if cfg is not None else conv_cfg, in_channels, out_channels, 3,
                            stride=stride, padding=dilation, dilation=dilation, groups=groups,
                            bias=False)


def check_plugins(plugins) -> List[dict]:
    """mmdet's plugin list: dicts with `cfg` (the layer config) and `position`, optionally
    `stages` (one bool per stage) and `postfix` (inside `cfg`, as mmdet writes it, or beside it)."""
    if plugins is None:
        return []
    if not isinstance(plugins, (list, tuple)):
        raise TypeError(f'plugins must be a list of dicts like dict(cfg=dict(type=...), '
                        f'position=...); got {type(plugins).__name__}: {plugins!r}')
    for plugin in plugins:
        if not isinstance(plugin, dict) or 'cfg' not in plugin or 'position' not in plugin:
            raise ValueError(f'each plugin needs "cfg" and "position" keys, got {plugin!r}')
        if not isinstance(plugin['cfg'], dict):
            raise TypeError(f'plugin "cfg" must be a dict with a "type" key; got {plugin!r}')
        if plugin['position'] not in PLUGIN_POSITIONS:
            raise ValueError(f'plugin position must be one of {PLUGIN_POSITIONS}, '
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
            raise ValueError(f'plugin "stages" must have one bool per stage '
                             f'(num_stages={num_stages}), got {stages!r}')
        if stages is None or stages[stage_idx]:
            selected.append(plugin)
    return selected


def plugin_postfix(plugin: dict):
    """mmdet reads a plugin's `postfix` from its `cfg`; the key beside `cfg` is accepted too."""
    inner, outer = plugin['cfg'].get('postfix'), plugin.get('postfix')
    if inner is not None and outer is not None and inner != outer:
        raise ValueError(f'plugin postfix given twice with different values (in cfg: {inner!r}, '
                         f'beside cfg: {outer!r}); give it once, inside cfg as mmdet does')
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
            raise ValueError(f'duplicate plugin name {name!r}: give each a distinct "postfix"')
        module.add_module(name, layer)
        names.append(name)
    return names


def forward_plugins(module: nn.Module, x, names: Sequence[str]):
    for name in names:
        x = getattr(module, name)(x)
    return x
