"""ResNeSt (Zhang et al. 2020): split-attention bottlenecks on a ResNet-D body."""
import torch.nn as nn

from ...errors import check_flag
from ...registry import MODELS
from ..layers.split_attention import SplitAttentionConv2d
from .resnet import Bottleneck, ResNetV1d
from .stages import resolve_alias


class ResNeStBottleneck(Bottleneck):
    """Bottleneck whose 3x3 is a split-attention conv; with `avg_down_stride` the stride moves
    to a 3x3 average pool after it (the "avd" of the paper)."""

    def __init__(self, inplanes, planes, radix=2, reduction_factor=4, avg_down_stride=True,
                 **kwargs):
        self.radix, self.reduction_factor = radix, reduction_factor
        self.avg_down_stride = avg_down_stride
        super().__init__(inplanes, planes, **kwargs)

    def build_conv2(self, width):
        self.with_avd = self.avg_down_stride and self.conv2_stride > 1
        self.conv2 = SplitAttentionConv2d(
            width, width, kernel_size=3, stride=1 if self.with_avd else self.conv2_stride,
            padding=self.dilation, dilation=self.dilation, groups=self.groups, radix=self.radix,
            reduction_factor=self.reduction_factor, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, dcn=self.dcn)
        if self.with_avd:
            self.avd_layer = nn.AvgPool2d(3, self.conv2_stride, padding=1)

    def forward_conv2(self, x):
        out = self.conv2(x)  # norm + relu live inside the split-attention conv
        return self.avd_layer(out) if self.with_avd else out


@MODELS.register_module()
class ResNeSt(ResNetV1d):
    """ResNeSt-14/26/50/101/152/200/269 (deep stem + avg-down shortcuts, as published).

    `stem_channels` defaults to the published width: 64 up to depth 50, 128 from 101 on.
    `width_per_group` is mmpretrain's name for `base_width`.
    """
    arch_settings = {
        14: (ResNeStBottleneck, (1, 1, 1, 1)),
        26: (ResNeStBottleneck, (2, 2, 2, 2)),
        50: (ResNeStBottleneck, (3, 4, 6, 3)),
        101: (ResNeStBottleneck, (3, 4, 23, 3)),
        152: (ResNeStBottleneck, (3, 8, 36, 3)),
        200: (ResNeStBottleneck, (3, 24, 36, 3)),
        269: (ResNeStBottleneck, (3, 30, 48, 8)),
    }

    def __init__(self, depth, *, groups=1, base_width=4, radix=2, reduction_factor=4,
                 avg_down_stride=True, width_per_group=None, **kwargs):
        self.groups = groups
        self.base_width = resolve_alias('base_width', base_width, 4, 'width_per_group',
                                        width_per_group)
        self.radix, self.reduction_factor = radix, reduction_factor
        self.avg_down_stride = check_flag('avg_down_stride', avg_down_stride)
        super().__init__(depth=depth, **kwargs)

    def default_stem_channels(self) -> int:
        return 128 if self.depth >= 101 else 64

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(
            groups=self.groups, base_width=self.base_width, base_channels=self.base_channels,
            radix=self.radix, reduction_factor=self.reduction_factor,
            avg_down_stride=self.avg_down_stride, **kwargs)
