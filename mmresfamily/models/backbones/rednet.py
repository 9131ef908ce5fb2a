"""RedNet (Li et al., CVPR 2021, "Involution: Inverting the Inherence of Convolution").

A ResNet whose bottleneck 3x3 convs are 7x7 involutions and whose deep stem has a 3x3
involution in the middle. Layout and key names follow the official mmcls RedNet
(d-li14/involution): `stem.0` conv-norm-act, `stem.1` involution, `stem.2` norm, `stem.4`
conv-norm-act, then `layer1..4` with `conv2` the involution. Unlike the official code, every norm
(including the stem's and the involution's) comes from `norm_cfg`.
"""
import torch.nn as nn

from ...registry import MODELS
from ..layers.involution import Involution
from ..layers.norm import conv_module, norm_layer
from ..layers.pooling import MaxPool2d
from .resnet import Bottleneck, ResNet

# why the dynamic-kernel families (RedNet, DCDC-ResNet) refuse `dcn`
DYNAMIC_OPERATOR = 'its dynamic operator replaces the 3x3 conv that DCN would deform'


class InvolutionBottleneck(Bottleneck):
    """Bottleneck whose 3x3 is an involution (kernel `kernel_size`, published: 7)."""

    def __init__(self, inplanes, planes, kernel_size=7, group_channels=16, reduction_ratio=4,
                 **kwargs):
        self.kernel_size, self.group_channels = kernel_size, group_channels
        self.reduction_ratio = reduction_ratio
        super().__init__(inplanes, planes, **kwargs)

    def build_conv2(self, width):
        self.conv2 = Involution(width, self.kernel_size, self.conv2_stride, self.dilation,
                                self.group_channels, self.reduction_ratio,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        self.add_norm(2, width)


@MODELS.register_module()
class RedNet(ResNet):
    """RedNet-26/38/50/101/152 (published 9.23M / 12.39M / 15.54M / 25.65M / 33.99M with a
    1000-class head).

    Args:
        kernel_size: involution kernel in the bottlenecks (published 7).
        stem_kernel_size: involution kernel in the stem (published 3).
        group_channels, reduction_ratio: of every involution (published 16, 4).
        Other arguments as `ResNet` (`dcn` is refused). The stem is always the involution stem.
    """
    dcn_unsupported_reason = DYNAMIC_OPERATOR
    arch_settings = {
        26: (InvolutionBottleneck, (1, 2, 4, 1)),
        38: (InvolutionBottleneck, (2, 3, 5, 2)),
        50: (InvolutionBottleneck, (3, 4, 6, 3)),
        101: (InvolutionBottleneck, (3, 4, 23, 3)),
        152: (InvolutionBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth, *, kernel_size=7, stem_kernel_size=3, group_channels=16,
                 reduction_ratio=4, **kwargs):
        self.kernel_size, self.stem_kernel_size = kernel_size, stem_kernel_size
        self.group_channels, self.reduction_ratio = group_channels, reduction_ratio
        super().__init__(depth=depth, deep_stem=True, **kwargs)

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(kernel_size=self.kernel_size,
                                      group_channels=self.group_channels,
                                      reduction_ratio=self.reduction_ratio, **kwargs)

    def build_stem(self):
        mid = self.stem_channels // 2
        self.stem = nn.Sequential(
            conv_module(self.in_channels, mid, 3, self.norm_cfg, stride=2, padding=1,
                        conv_cfg=self.conv_cfg),
            Involution(mid, self.stem_kernel_size, 1, 1, self.group_channels,
                       self.reduction_ratio, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg),
            norm_layer(self.norm_cfg, mid),
            nn.ReLU(inplace=True),
            conv_module(mid, self.stem_channels, 3, self.norm_cfg, padding=1,
                        conv_cfg=self.conv_cfg),
        )
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward_stem(self, x):
        return self.maxpool(self.stem(x))

    def stem_modules(self):
        return [self.stem]
