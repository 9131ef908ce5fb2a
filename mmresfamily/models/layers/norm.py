"""The norm builder every family uses: `build_norm` (mmcv's `build_norm_layer`, checked).

* `norm_cfg` is checked first (`layer_cfg.resolve_layer_cfg`): a dict, a registered type that
  normalises (N, C, H, W) features, GN with a positive int `num_groups`.
* GroupNorm fallback. mmdet's standard `dict(type='GN', num_groups=32)` does not divide every
  width of this family (Res2Net's 26-wide splits, DPN's and HarDNet's grown widths, the
  involution kernel generators). Where `num_groups` does not divide a norm's channels, that norm
  uses the largest group count that does (e.g. 104 channels: 26 groups) and is built as a
  `FallbackGroupNorm`, which records the request; the backbone warns once after it is built,
  naming every such norm with its channels and groups. A norm mmcv can build is never changed,
  and per-channel weights do not depend on the group count, so checkpoints load either way.
* Norms on globally pooled features (`pooled_input=True`: split attention's one vector per
  image) see one value per channel and image. GroupNorm there uses a single group -- the whole
  vector, a LayerNorm over its channels -- so its output depends on the input and it works at
  batch 1, whatever `num_groups` says (32 groups of one value each would output only their
  bias). BatchNorm there needs batches of two or more in training (the backbone checks this
  at forward); InstanceNorm would output only its bias and is refused.
"""
from contextlib import contextmanager
from typing import Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer

from ...errors import ArgumentTypeError, InvalidArgumentError, check_int
from .layer_cfg import resolve_layer_cfg


class FallbackGroupNorm(nn.GroupNorm):
    """A GroupNorm with fewer groups than `norm_cfg` asked for (see the module doc)."""

    def __init__(self, num_channels: int, num_groups: int, requested_num_groups: int,
                 **kwargs):
        super().__init__(num_groups, num_channels, **kwargs)
        self.requested_num_groups = requested_num_groups

    def extra_repr(self):
        return f'{super().extra_repr()}, requested_num_groups={self.requested_num_groups}'


def dividing_groups(num_channels: int, num_groups: int) -> int:
    """The largest group count <= num_groups that divides num_channels."""
    return max(g for g in range(1, min(num_groups, num_channels) + 1) if num_channels % g == 0)


def resolve_norm_cfg(norm_cfg, num_features: int, pooled_input: bool = False) -> dict:
    """The config mmcv's `build_norm_layer` builds for a norm over `num_features` channels."""
    cls = resolve_layer_cfg('norm_cfg', norm_cfg, 'norm')
    if issubclass(cls, nn.GroupNorm):
        if 'num_groups' not in norm_cfg:
            raise InvalidArgumentError(f'norm_cfg of type {norm_cfg["type"]!r} needs num_groups, '
                                       f'e.g. dict(type="GN", num_groups=32); got {norm_cfg!r}')
        num_groups = check_int('norm_cfg num_groups', norm_cfg['num_groups'])
        if pooled_input:
            return dict(norm_cfg, num_groups=1)
        if num_features % num_groups:
            if cls is not nn.GroupNorm:  # another class's group semantics are not ours to change
                raise InvalidArgumentError(
                    f'norm_cfg {norm_cfg!r}: num_groups={num_groups} does not divide the '
                    f'{num_features} channels of a {cls.__name__}')
            return dict(norm_cfg, type=FallbackGroupNorm,
                        num_groups=dividing_groups(num_features, num_groups),
                        requested_num_groups=num_groups)
    elif pooled_input and issubclass(cls, nn.modules.instancenorm._InstanceNorm):
        raise InvalidArgumentError(
            f'norm_cfg {norm_cfg!r}: an instance norm over globally pooled features (split '
            f'attention, {num_features} channels) sees one value per channel and would output '
            f'only its bias; use BN, SyncBN or GN')
    return norm_cfg


@contextmanager
def _naming_norm_cfg(norm_cfg, num_features: int):
    """Turn a failure inside the norm class (an option it does not take, ...) into our error."""
    try:
        yield
    except (TypeError, ValueError) as err:
        if isinstance(err, InvalidArgumentError):
            raise
        error = ArgumentTypeError if isinstance(err, TypeError) else InvalidArgumentError
        raise error(f'norm_cfg {norm_cfg!r} cannot build a norm over {num_features} channels: '
                    f'{err}') from err


def build_norm(norm_cfg, num_features: int, postfix='',
               pooled_input: bool = False) -> Tuple[str, nn.Module]:
    """`(name, layer)` as mmcv's `build_norm_layer` (name: 'bn1', 'gn1', ...), checked first.

    `pooled_input`: the norm sees globally pooled (N, C, 1, 1) features (see the module doc).
    """
    cfg = resolve_norm_cfg(norm_cfg, num_features, pooled_input)
    with _naming_norm_cfg(norm_cfg, num_features):
        name, layer = build_norm_layer(cfg, num_features, postfix=postfix)
    if pooled_input:
        layer.pooled_input = True  # read by the backbone's batch-size check at forward
    return name, layer


def norm_layer(norm_cfg, num_features: int) -> nn.Module:
    """Just the layer of `build_norm` (for containers that name it themselves)."""
    return build_norm(norm_cfg, num_features)[1]


def conv_module(in_channels: int, out_channels: int, kernel_size: int, norm_cfg,
                **kwargs) -> ConvModule:
    """mmcv's ConvModule (conv-norm-act, keys `conv`, `bn`/`gn`) with its norm built as
    `build_norm` builds it."""
    with _naming_norm_cfg(norm_cfg, out_channels):
        return ConvModule(in_channels, out_channels, kernel_size,
                          norm_cfg=resolve_norm_cfg(norm_cfg, out_channels), **kwargs)
