"""DCDC-ResNet (Yan et al. 2022, arXiv 2211.06163): ResNet with every bottleneck 3x3 conv
replaced by a dual complementary dynamic convolution (see `layers/dcdc.py` for the operator and
the choices its description leaves open). Everything else is ResNet v1b: 7x7 stem (or the deep
stem with `deep_stem=True`), keys as mmdet's ResNet except `conv2.local_branch` /
`conv2.global_branch` inside each block.
"""
from ...registry import MODELS
from ..layers.dcdc import DCDC
from .rednet import DYNAMIC_OPERATOR
from .resnet import Bottleneck, ResNet


class DCDCBottleneck(Bottleneck):
    """Bottleneck whose 3x3 is a DCDC operator."""

    def __init__(self, inplanes, planes, kernel_size=3, group_channels=16,
                 global_group_channels=1, reduction_ratio=4, **kwargs):
        self.kernel_size, self.group_channels = kernel_size, group_channels
        self.global_group_channels, self.reduction_ratio = global_group_channels, reduction_ratio
        super().__init__(inplanes, planes, **kwargs)

    def build_conv2(self, width):
        self.conv2 = DCDC(width, self.kernel_size, self.conv2_stride, self.dilation,
                          self.group_channels, self.global_group_channels, self.reduction_ratio,
                          conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        self.add_norm(2, width)


@MODELS.register_module()
class DCDCResNet(ResNet):
    """DCDC-ResNet-50/101.

    Args:
        kernel_size: of both DCDC branches (3, the conv it replaces).
        group_channels: channels sharing a location-specific (LSA) kernel (16).
        global_group_channels: channels sharing a sample-specific (GSI) kernel (1: depthwise).
        reduction_ratio: of both kernel generators (4).
        Other arguments as `ResNet` (`dcn` is refused).
    """
    dcn_unsupported_reason = DYNAMIC_OPERATOR
    arch_settings = {
        50: (DCDCBottleneck, (3, 4, 6, 3)),
        101: (DCDCBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self, depth, *, kernel_size=3, group_channels=16, global_group_channels=1,
                 reduction_ratio=4, **kwargs):
        self.kernel_size, self.group_channels = kernel_size, group_channels
        self.global_group_channels, self.reduction_ratio = global_group_channels, reduction_ratio
        super().__init__(depth=depth, **kwargs)

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(kernel_size=self.kernel_size,
                                      group_channels=self.group_channels,
                                      global_group_channels=self.global_group_channels,
                                      reduction_ratio=self.reduction_ratio, **kwargs)
