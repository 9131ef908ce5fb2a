"""What every backbone of the family shares.

A backbone is a stem followed by named stages. This base class owns the contract the toolboxes rely
on: argument checks with clear messages, `out_indices` -> tuple of features, `out_channels`,
timm-style `feature_info`, mmdet semantics for `frozen_stages` and `norm_eval`, `init_cfg` with the
deprecated `pretrained` shortcut, and an input check at forward.
"""
import itertools
import operator
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule, constant_init
from mmengine.model.weight_init import PretrainedInit, update_init_info
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.pretrained import load_pretrained, pretrained_kwargs

DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


def check_choice(name: str, value, allowed):
    """Raise a ValueError naming the argument and the allowed values."""
    if value not in allowed:
        allowed_text = ', '.join(repr(a) for a in allowed)
        raise ValueError(f'{name} must be one of {allowed_text}; got {value!r}')
    return value


def check_stage_tuple(name: str, value, num_stages: int) -> tuple:
    """A per-stage tuple (strides, dilations, stage_with_dcn, ...) must have num_stages entries."""
    value = tuple(value)
    if len(value) != num_stages:
        raise ValueError(f'{name} must have one entry per stage (num_stages={num_stages}); '
                         f'got {len(value)}: {value!r}')
    return value


# output stride -> (strides, dilations) of four stages (mmseg's dilated-backbone recipe)
OUTPUT_STRIDES = {
    32: ((1, 2, 2, 2), (1, 1, 1, 1)),
    16: ((1, 2, 2, 1), (1, 1, 1, 2)),
    8: ((1, 2, 1, 1), (1, 1, 2, 4)),
}


def resolve_strides(output_stride, strides, dilations, num_stages: int,
                    first_stage_strides: bool = True) -> Tuple[tuple, tuple]:
    """Per-stage (strides, dilations) for the dense families: given, or set by `output_stride`
    (8/16/32, four stages), or the classification default (stride 2 from the second stage on,
    no dilation). `first_stage_strides=False` where stage 1 has no downsampling layer."""
    if output_stride is not None:
        check_choice('output_stride', output_stride, tuple(OUTPUT_STRIDES))
        if num_stages != 4 or strides is not None or dilations is not None:
            raise ValueError('output_stride sets strides and dilations of the 4 stages: '
                             'give either output_stride or strides/dilations, not both')
        return OUTPUT_STRIDES[output_stride]
    strides = (1, ) + (2, ) * (num_stages - 1) if strides is None else strides
    dilations = (1, ) * num_stages if dilations is None else dilations
    strides = check_stage_tuple('strides', strides, num_stages)
    dilations = check_stage_tuple('dilations', dilations, num_stages)
    for s in strides:
        check_choice('strides entries', s, (1, 2))
    if strides[0] != 1 and not first_stage_strides:
        raise ValueError(f'strides[0] must be 1: stage 1 has no downsampling layer of its own; '
                         f'got {strides!r}')
    for d in dilations:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f'dilations entries must be positive ints; got {dilations!r}')
    return strides, dilations


def stage_reductions(strides, stem_reduction: int = 4) -> List[int]:
    """Each stage's output stride: the stem's times every stage stride so far."""
    return list(itertools.accumulate(strides, operator.mul, initial=stem_reduction))[1:]


def resolve_alias(name: str, value, default, alias: str, alias_value):
    """One argument that another toolbox spells differently (`alias`, None when not given):
    either spelling works; both, with different values, are refused."""
    if alias_value is None:
        return value
    if value != default and value != alias_value:
        raise ValueError(f'{name} and {alias} are one argument (two spellings); give one of '
                         f'them; got {name}={value!r}, {alias}={alias_value!r}')
    return alias_value


class BaseBackbone(BaseModule):
    """Stem + stages. Subclasses build `self.stage_names` and call `set_feature_info`."""

    def __init__(self, in_channels: int = 3, num_stages: int = 4,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_eval: bool = False, pretrained: Optional[str] = None,
                 init_cfg=None, max_stages: int = 4):
        if pretrained is not None and init_cfg is not None:
            raise ValueError('init_cfg and pretrained cannot both be set; use init_cfg='
                             'dict(type="Pretrained", checkpoint=...)')
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a checkpoint path or None; got {pretrained!r}')
            warnings.warn('pretrained is deprecated; use init_cfg=dict(type="Pretrained", '
                          'checkpoint=...)', DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=DEFAULT_INIT_CFG if init_cfg is None else init_cfg)
        check_choice('num_stages', num_stages, range(1, max_stages + 1))
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int; got {in_channels!r}')
        self.in_channels = in_channels
        self.num_stages = num_stages
        self.out_indices = self._normalise_out_indices(out_indices, num_stages)
        check_choice('frozen_stages', frozen_stages, range(-1, num_stages + 1))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.stage_names: List[str] = []
        self.feature_info: List[dict] = []

    @staticmethod
    def _normalise_out_indices(out_indices, num_stages) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        out_indices = tuple(out_indices)
        allowed = range(-num_stages, num_stages)
        if not out_indices:
            raise ValueError('out_indices must name at least one stage')
        for index in out_indices:
            if not isinstance(index, int) or index not in allowed:
                raise ValueError(f'out_indices entries must be stage indices in '
                                 f'[{-num_stages}, {num_stages - 1}] (num_stages={num_stages}); '
                                 f'got {out_indices!r}')
        normalised = tuple(i % num_stages for i in out_indices)
        if len(set(normalised)) != len(normalised):
            raise ValueError(f'out_indices has repeated stages: {out_indices!r}')
        return normalised

    # ---- description of the outputs -------------------------------------------------------
    def set_feature_info(self, channels: Sequence[int], reductions: Sequence[int]):
        """Describe every stage (timm's `feature_info`), whatever out_indices selects."""
        self.feature_info = [
            dict(num_chs=int(c), reduction=int(r), module=name)
            for c, r, name in zip(channels, reductions, self.stage_names)
        ]

    @property
    def out_channels(self) -> Tuple[int, ...]:
        return tuple(self.feature_info[i]['num_chs'] for i in self.out_indices)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        return tuple(self.feature_info[i]['reduction'] for i in self.out_indices)

    # ---- forward ----------------------------------------------------------------------------
    def forward_stem(self, x):
        raise NotImplementedError

    def checkpointed_stem(self, x):
        """`forward_stem`, recomputed in backward under `with_cp` (as the blocks are): at full
        resolution the stem's activations are a large share of what training keeps."""
        if getattr(self, 'with_cp', False) and torch.is_grad_enabled() and any(
                p.requires_grad for m in self.stem_modules() for p in m.parameters()):
            return cp.checkpoint(self.forward_stem, x, use_reentrant=False)
        return self.forward_stem(x)

    def emit(self, stage_index: int, x):
        """The feature handed out for a stage (a hook for families that post-process taps)."""
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects input of shape '
                             f'(N, {self.in_channels}, H, W) (in_channels={self.in_channels}); '
                             f'got {tuple(x.shape)}')
        x = self.checkpointed_stem(x)
        outs = {}
        last = max(self.out_indices)
        for i, name in enumerate(self.stage_names[:last + 1]):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs[i] = self.emit(i, x)
        return tuple(outs[i] for i in self.out_indices)

    # ---- initialisation -----------------------------------------------------------------------
    @property
    def pretrained_cfg(self) -> Optional[dict]:
        """The `Pretrained` entry of init_cfg, or None."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        found = [c for c in cfgs if isinstance(c, dict) and
                 c.get('type') in ('Pretrained', PretrainedInit)]
        if len(found) > 1:
            raise ValueError(f'init_cfg may hold one Pretrained entry; got {len(found)}')
        return found[0] if found else None

    @property
    def loads_pretrained(self) -> bool:
        return self.pretrained_cfg is not None

    def keys_pretrained_may_lack(self) -> List[str]:
        """Key prefixes of what detection configs add to a classification network (deformable-conv
        offsets, mmcv plugins): ImageNet weights lack them; they keep their initialisation."""
        prefixes = []
        for name, m in self.named_modules():
            if isinstance(getattr(m, 'conv_offset', None), nn.Module):
                prefixes.append(f'{name}.conv_offset.')
            for plugin in (p for names in getattr(m, 'plugin_names', {}).values() for p in names):
                prefixes.append(f'{name}.{plugin}.')
        return prefixes

    def init_weights(self):
        """mmengine's init_cfg handling, except that a `Pretrained` entry is loaded by
        `load_pretrained`: strictly by default (a checkpoint that does not fit is refused, naming
        the keys), or what fits with `strict=False` in the entry."""
        pretrained = self.pretrained_cfg
        kwargs = pretrained_kwargs(pretrained) if pretrained else None  # bad keys fail first
        first_call = not self._is_init
        init_cfg = self.init_cfg
        if pretrained is not None:  # the other entries and the children as mmengine does them
            self.init_cfg = [c for c in (init_cfg if isinstance(init_cfg, list) else [init_cfg])
                             if c is not pretrained]
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        if not first_call:  # mmengine has warned
            return
        # mmcv's deformable convs must start as plain convs (zero offsets); mmengine's recursion
        # does not reach those nested in ModuleLists or plain nn.Modules
        for m in self.modules():
            if m is not self and isinstance(getattr(m, 'conv_offset', None), nn.Conv2d):
                constant_init(m.conv_offset, 0)
        if pretrained is not None:  # the weights last, as mmengine orders them
            load_pretrained(self, may_lack=self.keys_pretrained_may_lack(), **kwargs)
            if hasattr(self, '_params_init_info'):  # inside a model mmengine initialises
                update_init_info(self, f'load_pretrained: {kwargs["checkpoint"]}')

    # ---- frozen stages / norm_eval ------------------------------------------------------------
    def stem_modules(self) -> List[nn.Module]:
        """Modules frozen by frozen_stages >= 0."""
        raise NotImplementedError

    def frozen_modules(self) -> List[nn.Module]:
        modules = []
        if self.frozen_stages >= 0:
            modules += self.stem_modules()
        modules += [getattr(self, name) for name in self.stage_names[:max(self.frozen_stages, 0)]]
        return modules

    def _freeze_stages(self):
        for module in self.frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
