"""What every backbone of the family shares.

A backbone is a stem followed by named stages. This base class owns the contract the toolboxes rely
on: argument checks with clear messages, `out_indices` -> tuple of features, `out_channels`,
timm-style `feature_info`, mmdet semantics for `frozen_stages` and `norm_eval`, `init_cfg` with the
deprecated `pretrained` shortcut, and the input check at forward (`input_rules.py`: type,
shape, batch, and the smallest spatial size the built stages can run).
"""
import inspect
import warnings
from abc import ABCMeta
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule, constant_init
from mmengine.model.weight_init import PretrainedInit, update_init_info
from torch.nn.modules.batchnorm import _BatchNorm

from ...errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    UnknownChoiceError,
    check_choice,
    check_flag,
    check_int,
    check_stage_tuple,
    check_unsupported,
    is_int,
)
from ...utils.pretrained import load_pretrained, pretrained_kwargs
from ..layers.capture import is_capturing_graph
from ..layers.layer_cfg import check_conv_cfg, check_dcn
from ..layers.norm import FallbackGroupNorm
from .input_rules import InputRules

__all__ = ['BaseBackbone', 'check_choice', 'check_stage_tuple']

DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


class _AfterBuild(ABCMeta):
    """Calls `after_build()` once the outermost `__init__` has returned, whatever the family
    (subclasses keep adding layers after their parents' `__init__`)."""

    def __call__(cls, *args, **kwargs):
        model = super().__call__(*args, **kwargs)
        model.after_build()
        return model


class BaseBackbone(InputRules, BaseModule, metaclass=_AfterBuild):
    """Stem + stages. Subclasses build their stages with `add_stage` and call `set_feature_info`.

    The options every backbone shares are taken here, keyword-only, once; a family lists only
    its own arguments (and a shared one whose default it changes) and passes the rest on:

    Args:
        in_channels (int): input channels.
        num_stages (int): stages to build, 1 to `max_stages` (the family's, from its arch).
        out_indices (int | Sequence[int], optional): stages whose features `forward` returns
            (negative from the end); None: every stage.
        frozen_stages (int): -1 trains everything; k >= 0 freezes the stem and stages < k
            (mmdet semantics, parameters and norm statistics).
        norm_cfg (dict): the norm layers' config (mmcv: BN, SyncBN, GN, ...).
        norm_eval (bool): keep every BatchNorm in eval mode in training.
        with_cp (bool): recompute each block (and the stem) in backward instead of storing
            its activations.
        init_cfg (dict | list[dict], optional): mmengine's; default Kaiming convs, unit norms.
        pretrained (str, optional): deprecated shortcut for init_cfg=Pretrained(checkpoint).
    """
    # table-or-dict archs: `arch_settings` maps each arch name to its fields; a family that also
    # takes a dict of fields says which in `arch_dict_help` and checks one in `check_arch_dict`
    arch_settings: dict = {}
    arch_dict_help: Optional[str] = None
    # families whose 3x3 is not a convolution refuse `dcn`, saying why
    dcn_unsupported_reason: Optional[str] = None
    # the most stages the family has (DenseNet: its arch's dense blocks, set before __init__)
    max_stages: int = 4

    def __init__(self, *, in_channels: int = 3, num_stages: int = 4,
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), norm_eval: bool = False,
                 with_cp: bool = False, init_cfg=None, pretrained: Optional[str] = None,
                 **unknown):
        if unknown:  # what reaches here no family took: name it, and what the family takes
            raise ArgumentTypeError(
                f'{type(self).__name__} got unexpected arguments {sorted(unknown)}; it takes '
                f'{", ".join(self.argument_names())}')
        if pretrained is not None and init_cfg is not None:
            raise InvalidArgumentError('init_cfg and pretrained cannot both be set; use init_cfg='
                                       'dict(type="Pretrained", checkpoint=...)')
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise ArgumentTypeError(f'pretrained must be a checkpoint path or None; got '
                                        f'{pretrained!r}')
            warnings.warn('pretrained is deprecated; use init_cfg=dict(type="Pretrained", '
                          'checkpoint=...)', DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=DEFAULT_INIT_CFG if init_cfg is None else init_cfg)
        check_choice('num_stages', num_stages, range(1, self.max_stages + 1))
        self.in_channels = check_int('in_channels', in_channels)
        self.num_stages = num_stages
        self.out_indices = self._normalise_out_indices(out_indices, num_stages)
        check_choice('frozen_stages', frozen_stages, range(-1, num_stages + 1))
        self.frozen_stages = frozen_stages
        self.norm_cfg = norm_cfg
        self.norm_eval = check_flag('norm_eval', norm_eval)
        self.with_cp = check_flag('with_cp', with_cp)
        self.stage_names: List[str] = []
        self.feature_info: List[dict] = []

    @classmethod
    def argument_names(cls) -> List[str]:
        """Every argument the family's constructor chain takes, down to BaseBackbone's."""
        names = set()
        for klass in cls.__mro__[:cls.__mro__.index(BaseBackbone) + 1]:
            if '__init__' in vars(klass):
                names.update(name for name, p in inspect.signature(klass.__init__).parameters
                             .items() if name != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                                       p.KEYWORD_ONLY))
        return sorted(names)

    def per_stage(self, value, default) -> tuple:
        """`value`, or `default` for each of the num_stages stages when None."""
        return (default, ) * self.num_stages if value is None else value

    def check_layer_options(self, conv_cfg, dcn, stage_with_dcn) -> Tuple[bool, ...]:
        """The layer options every family takes (mmdet's names), checked before anything is
        built, also where no stage uses them (a bad `dcn` would otherwise pass unnoticed).
        Returns stage_with_dcn as a tuple of bools (None: no stage)."""
        if self.dcn_unsupported_reason:
            check_unsupported('dcn', dcn, type(self).__name__,
                              f': {self.dcn_unsupported_reason}; leave dcn=None')
        check_conv_cfg(conv_cfg)
        check_dcn(dcn)
        return tuple(check_flag('stage_with_dcn entries', v) for v in check_stage_tuple(
            'stage_with_dcn', self.per_stage(stage_with_dcn, False), self.num_stages))

    @classmethod
    def resolve_arch(cls, arch, num_stages: Optional[int] = None) -> dict:
        """`arch`: a key of `arch_settings` (an int and its digits name the same key) or, where
        the family takes one, a dict of the arch's fields, checked by `check_arch_dict`."""
        if isinstance(arch, dict) and cls.arch_dict_help:
            return cls.check_arch_dict(dict(arch), num_stages)
        if is_int(arch) or isinstance(arch, str):
            for key, settings in cls.arch_settings.items():
                if str(key) == str(arch):
                    return dict(settings)
        allowed = ', '.join(repr(a) for a in cls.arch_settings)
        dict_text = f' or {cls.arch_dict_help}' if cls.arch_dict_help else ''
        raise UnknownChoiceError(f'arch must be one of {allowed}{dict_text}; got {arch!r}')

    @classmethod
    def check_arch_dict(cls, arch: dict, num_stages: Optional[int]) -> dict:
        """A dict `arch`, checked and completed (families that take one override this)."""
        raise NotImplementedError

    def add_stage(self, name: str, stage: nn.Module):
        """Add the next stage (in order: `forward` runs them so)."""
        self.add_module(name, stage)
        self.stage_names.append(name)

    @staticmethod
    def _normalise_out_indices(out_indices, num_stages) -> Tuple[int, ...]:
        """None: every stage; an int or a sequence of stage indices (negative from the end)."""
        if out_indices is None:
            return tuple(range(num_stages))
        if is_int(out_indices):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (tuple, list)):
            raise ArgumentTypeError(f'out_indices must be None, a stage index or a tuple of '
                                    f'them; got {out_indices!r}')
        out_indices = tuple(out_indices)
        allowed = range(-num_stages, num_stages)
        if not out_indices:
            raise InvalidArgumentError('out_indices must name at least one stage')
        for index in out_indices:
            if not is_int(index) or index not in allowed:
                raise InvalidArgumentError(
                    f'out_indices entries must be stage indices in [{-num_stages}, '
                    f'{num_stages - 1}] (num_stages={num_stages}); got {out_indices!r}')
        normalised = tuple(int(i) % num_stages for i in out_indices)
        if len(set(normalised)) != len(normalised):
            raise InvalidArgumentError(f'out_indices has repeated stages: {out_indices!r}')
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
        if self.with_cp and torch.is_grad_enabled() and not \
                is_capturing_graph(x) and any(p.requires_grad for m in self.stem_modules()
                                              for p in m.parameters()):
            return cp.checkpoint(self.forward_stem, x, use_reentrant=False)
        return self.forward_stem(x)

    def emit(self, stage_index: int, x):
        """The feature handed out for a stage (a hook for families that post-process taps)."""
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        # not while a graph is captured: under torch.fx the input is a Proxy, torch.jit.trace
        # would record the checks' shape reads as constants, torch.export as guards on the
        # dynamic sizes (torch.compile keeps them: dynamo guards and recompiles)
        if not is_capturing_graph(x):
            self.check_input(x)
        x = self.checkpointed_stem(x)
        outs = {}
        last = max(self.out_indices)
        for i, name in enumerate(self.stage_names[:last + 1]):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs[i] = self.emit(i, x)
        return tuple(outs[i] for i in self.out_indices)

    def after_build(self):
        """Once the model is complete: freeze `frozen_stages`, report GroupNorm fallbacks and
        derive the input rules that `check_input` applies."""
        self._freeze_stages()
        self._warn_group_norm_fallbacks()
        self.derive_input_rules()

    def _warn_group_norm_fallbacks(self):
        fallbacks = [(name, m) for name, m in self.named_modules()
                     if isinstance(m, FallbackGroupNorm)]
        if not fallbacks:
            return
        shown = ', '.join(f'{name} ({m.num_channels} channels: {m.num_groups} groups)'
                          for name, m in fallbacks[:8])
        more = f' and {len(fallbacks) - 8} more' if len(fallbacks) > 8 else ''
        warnings.warn(
            f'{type(self).__name__}: norm_cfg GN num_groups={fallbacks[0][1].requested_num_groups} '
            f'does not divide the channels of {len(fallbacks)} norms; each uses the largest group '
            f'count that divides its channels: {shown}{more} '
            f'(see mmresfamily.models.layers.norm)', stacklevel=4)

    # ---- initialisation -----------------------------------------------------------------------
    @property
    def pretrained_cfg(self) -> Optional[dict]:
        """The `Pretrained` entry of init_cfg, or None."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        found = [c for c in cfgs if isinstance(c, dict) and
                 c.get('type') in ('Pretrained', PretrainedInit)]
        if len(found) > 1:
            raise InvalidArgumentError(f'init_cfg may hold one Pretrained entry; got {len(found)}')
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
