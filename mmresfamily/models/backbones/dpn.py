"""Dual Path Networks (Chen et al. 2017), pre-activation blocks as in cypw's MXNet DPNs / timm.

A block's output is one tensor: the residual path (`num_1x1_c` channels, added to) followed by
the dense path (grows by `inc` channels per block, concatenated to). Stages emit that
concatenation at strides 4/8/16/32 -- or, with `strides`/`dilations` (or `output_stride`),
dilated stride-8/16 features for segmentation, which timm's DPN does not offer.
Key names follow timm inside blocks (`c1x1_a`, `c3x3_b`, `c1x1_c`), with `norm` for timm's `bn`
and `proj` for its `c1x1_w_s1`/`c1x1_w_s2`.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer

from ...errors import InvalidArgumentError, check_flag, check_int, check_stage_ints
from ...registry import MODELS
from ..layers.builders import build_conv3x3
from ..layers.capture import checkpoints, is_capturing_graph
from ..layers.norm import norm_layer
from ..layers.pooling import MaxPool2d
from .base import BaseBackbone
from .stages import resolve_strides, stage_reductions


class NormActConv(nn.Sequential):
    """norm -> relu [-> conv]: DPN's pre-activation unit (timm's BnActConv2d / BnAct)."""

    def __init__(self, in_channels, norm_cfg, conv=None):
        super().__init__(OrderedDict([('norm', norm_layer(norm_cfg, in_channels)),
                                      ('act', nn.ReLU(inplace=True))]))
        if conv is not None:
            self.add_module('conv', conv)


class DualPathBlock(nn.Module):
    """proj? + c1x1_a -> c3x3_b (grouped, strided, dilated, DCN-able) -> c1x1_c.

    The first block of a stage projects its input onto both paths (`proj`); the others pass the
    input through, adding to its residual part and appending `inc` dense channels.
    """

    def __init__(self, in_channels, num_1x1_a, num_3x3_b, num_1x1_c, inc, groups, project,
                 stride=1, dilation=1, b=False, with_cp=False, conv_cfg=None,
                 norm_cfg=dict(type='BN', eps=1e-3), dcn=None):
        super().__init__()
        self.num_1x1_c, self.inc, self.b, self.with_cp = num_1x1_c, inc, b, with_cp

        def unit(cin, cout, kernel_size=1, stride=1):
            return NormActConv(cin, norm_cfg, build_conv_layer(conv_cfg, cin, cout, kernel_size,
                                                               stride=stride, bias=False))

        self.proj = unit(in_channels, num_1x1_c + 2 * inc, stride=stride) if project else None
        self.c1x1_a = unit(in_channels, num_1x1_a)
        self.c3x3_b = NormActConv(num_1x1_a, norm_cfg, build_conv3x3(
            conv_cfg, dcn, num_1x1_a, num_3x3_b, stride, dilation, groups))
        if b:  # DPN-b: separate 1x1 convs for the residual and the dense outputs
            self.c1x1_c = NormActConv(num_3x3_b, norm_cfg)
            self.c1x1_c1 = build_conv_layer(conv_cfg, num_3x3_b, num_1x1_c, 1, bias=False)
            self.c1x1_c2 = build_conv_layer(conv_cfg, num_3x3_b, inc, 1, bias=False)
        else:
            self.c1x1_c = unit(num_3x3_b, num_1x1_c + inc)

    def _inner_forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        out = self.c1x1_c(self.c3x3_b(self.c1x1_a(x)))
        n = self.num_1x1_c
        if self.b:
            residual, dense = self.c1x1_c1(out), self.c1x1_c2(out)
        else:
            residual, dense = out[:, :n], out[:, n:]
        if is_capturing_graph(x) or any(t.requires_grad for t in (shortcut, residual, dense)):
            # out of place when autograd records (not under no_grad, nor in frozen stages): the
            # backward of an in-place add into a slice of the concatenation clones that whole
            # gradient (DPN-92 training ran 0.95x timm's with it)
            return torch.cat([shortcut[:, :n] + residual, shortcut[:, n:], dense], dim=1)
        # nothing recorded: add into the concatenation's slice, no separate sum tensor allocated
        out = torch.cat([shortcut, dense], dim=1)
        out[:, :n] += residual
        return out

    def forward(self, x):
        if checkpoints(self.with_cp, x):
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


@MODELS.register_module()
class DPN(BaseBackbone):
    """DPN-68/68b/92/98/107/131 with mmdet-style options.

    Args:
        arch (str | int | dict): a key of `arch_settings`, or a dict with its fields: k_r
            (3x3 width at stage 1), groups, k_sec (blocks per stage), inc_sec (dense growth per
            stage), small (3x3 stem, 1x residual width), num_init_features, b.
        strides, dilations: per stage; `output_stride` (8/16/32) sets both the mmseg way.
        dcn, stage_with_dcn: grouped deformable 3x3 convs in the chosen stages.
        with_cp: checkpoint every block.
    The other arguments are those of `BaseBackbone` / mmdet's ResNet. Norms default to BN with
    eps=1e-3, as in the original MXNet models.
    """
    arch_settings = {
        '68': dict(k_r=128, groups=32, k_sec=(3, 4, 12, 3), inc_sec=(16, 32, 32, 64),
                   small=True, num_init_features=10, b=False),
        '68b': dict(k_r=128, groups=32, k_sec=(3, 4, 12, 3), inc_sec=(16, 32, 32, 64),
                    small=True, num_init_features=10, b=True),
        '92': dict(k_r=96, groups=32, k_sec=(3, 4, 20, 3), inc_sec=(16, 32, 24, 128),
                   small=False, num_init_features=64, b=False),
        '98': dict(k_r=160, groups=40, k_sec=(3, 6, 20, 3), inc_sec=(16, 32, 32, 128),
                   small=False, num_init_features=96, b=False),
        '107': dict(k_r=200, groups=50, k_sec=(4, 8, 20, 3), inc_sec=(20, 64, 64, 128),
                    small=False, num_init_features=128, b=False),
        '131': dict(k_r=160, groups=40, k_sec=(4, 8, 28, 3), inc_sec=(16, 32, 32, 128),
                    small=False, num_init_features=128, b=False),
    }
    arch_dict_help = f"a dict with keys {sorted(arch_settings['92'])}"

    def __init__(self, arch='92', *, strides=None, dilations=None, output_stride=None,
                 conv_cfg=None, norm_cfg=dict(type='BN', eps=1e-3, requires_grad=True), dcn=None,
                 stage_with_dcn=None, **kwargs):
        super().__init__(norm_cfg=norm_cfg, **kwargs)
        num_stages = self.num_stages
        arch = self.resolve_arch(arch, num_stages)
        strides, dilations = resolve_strides(output_stride, strides, dilations, num_stages)
        stage_with_dcn = self.check_layer_options(conv_cfg, dcn, stage_with_dcn)
        self.arch = arch
        self.strides, self.dilations = strides, dilations
        self.dcn, self.stage_with_dcn = dcn, stage_with_dcn

        stem_channels = arch['num_init_features']
        kernel = 3 if arch['small'] else 7
        self.stem = nn.Sequential(OrderedDict([
            ('conv', build_conv_layer(conv_cfg, self.in_channels, stem_channels, kernel,
                                      stride=2, padding=kernel // 2, bias=False)),
            ('norm', norm_layer(norm_cfg, stem_channels)),
            ('act', nn.ReLU(inplace=True)),
        ]))
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)

        width_factor = 1 if arch['small'] else 4
        channels, stage_channels = stem_channels, []
        for i in range(num_stages):
            base = 64 * 2**i
            residual_width, bottleneck = base * width_factor, arch['k_r'] * base // 64
            inc = arch['inc_sec'][i]
            blocks = []
            for j in range(arch['k_sec'][i]):
                blocks.append(DualPathBlock(
                    channels, bottleneck, bottleneck, residual_width, inc, arch['groups'],
                    project=j == 0, stride=strides[i] if j == 0 else 1, dilation=dilations[i],
                    b=arch['b'], with_cp=self.with_cp, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                    dcn=dcn if stage_with_dcn[i] else None))
                channels = residual_width + (j + 3) * inc
            self.add_stage(f'stage{i + 1}', nn.Sequential(*blocks))
            stage_channels.append(channels)
        self.set_feature_info(stage_channels, stage_reductions(strides))

    @classmethod
    def check_arch_dict(cls, arch, num_stages=None) -> dict:
        fields = set(cls.arch_settings['92'])
        if set(arch) != fields:
            raise InvalidArgumentError(f'arch dict needs exactly the keys {sorted(fields)}; '
                                       f'got {sorted(arch)}')
        for key in ('k_r', 'groups', 'num_init_features'):
            check_int(f'arch {key}', arch[key])
        for key in ('k_sec', 'inc_sec'):
            check_stage_ints(f'arch {key}', arch[key], num_stages, at_least=True)
        for key in ('small', 'b'):
            check_flag(f'arch {key}', arch[key])
        if arch['k_r'] % arch['groups']:  # the 3x3 widths are k_r * 2^stage
            raise InvalidArgumentError(f'arch groups={arch["groups"]} must divide k_r='
                                       f'{arch["k_r"]} (the grouped 3x3 conv width)')
        return arch

    def forward_stem(self, x):
        return self.maxpool(self.stem(x))

    def stem_modules(self):
        return [self.stem]
