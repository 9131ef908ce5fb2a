"""Res2Net (Gao et al. 2019): hierarchical multi-scale splits inside the bottleneck."""
import math

import torch
import torch.nn as nn

from ...errors import check_flag, check_int
from ...registry import MODELS
from ..layers.builders import build_conv3x3
from ..layers.norm import norm_layer
from .resnet import Bottleneck, ResNet


class Bottle2neck(Bottleneck):
    """conv1 -> `scales` splits; split i>0 (after the first) adds the previous split's output
    before its own 3x3; the last split passes through (pooled in a stage's first block).

    `stride1_pool=True` pools that last split in a stage's first block even at stride 1, as the
    official code, timm and mmpretrain do; False reproduces mmdet, which skips it.
    """

    def __init__(self, inplanes, planes, scales=4, base_width=26, stride1_pool=True, **kwargs):
        # one split is a plain bottleneck: Res2Net needs two or more (mmdet asserts the same)
        self.scales = check_int('scales', scales, minimum=2)
        self.stride1_pool = check_flag('stride1_pool', stride1_pool)
        super().__init__(inplanes, planes, base_width=base_width, **kwargs)

    def bottleneck_width(self, planes, groups, base_width, base_channels):
        self.split_width = int(math.floor(planes * base_width / base_channels)) * groups
        return self.split_width * self.scales

    def build_conv2(self, width):
        # the first block of a stage takes each split on its own (no hierarchy yet)
        self.stage_first = self.downsample is not None or self.stride > 1
        w = self.split_width
        self.convs = nn.ModuleList(
            build_conv3x3(self.conv_cfg, self.dcn, w, w, self.conv2_stride, self.dilation,
                          self.groups) for _ in range(self.scales - 1))
        self.bns = nn.ModuleList(
            norm_layer(self.norm_cfg, w) for _ in range(self.scales - 1))
        self.with_pool = self.stage_first and (self.conv2_stride > 1 or self.stride1_pool)
        if self.with_pool:
            self.pool = nn.AvgPool2d(kernel_size=3, stride=self.conv2_stride, padding=1)

    def forward_conv2(self, x):
        splits = torch.split(x, self.split_width, 1)
        outs = []
        sp = splits[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if i == 0 or self.stage_first else sp + splits[i]
            sp = self.relu(bn(conv(sp)))
            outs.append(sp)
        outs.append(self.pool(splits[-1]) if self.with_pool else splits[-1])
        return torch.cat(outs, 1)


@MODELS.register_module()
class Res2Net(ResNet):
    """Res2Net-50/101/152. Defaults are the "v1b" of the Res2Net authors and mmdet
    (deep stem + avg-down shortcuts); `deep_stem=False, avg_down=False` gives the original."""
    arch_settings = {
        50: (Bottle2neck, (3, 4, 6, 3)),
        101: (Bottle2neck, (3, 4, 23, 3)),
        152: (Bottle2neck, (3, 8, 36, 3)),
    }

    def __init__(self, *, scales=4, base_width=26, groups=1, stride1_pool=True, style='pytorch',
                 deep_stem=True, avg_down=True, **kwargs):
        self.scales, self.base_width, self.groups = scales, base_width, groups
        self.stride1_pool = stride1_pool
        super().__init__(style=style, deep_stem=deep_stem, avg_down=avg_down, **kwargs)

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(
            scales=self.scales, base_width=self.base_width, groups=self.groups,
            base_channels=self.base_channels, stride1_pool=self.stride1_pool, **kwargs)
