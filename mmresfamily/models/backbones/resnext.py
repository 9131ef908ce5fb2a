"""ResNeXt (Xie et al. 2017): the ResNet bottleneck with a grouped 3x3 conv."""
from ...registry import MODELS
from .resnet import Bottleneck, ResNet
from .stages import resolve_alias


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt-50/101/152; `groups` x `base_width` is the "32x4d" of the names.

    Defaults are the common 32x4d (mmdet's class defaults to groups=1, which is a plain ResNet;
    its configs always pass groups explicitly). `width_per_group` is mmpretrain's name for
    `base_width`.
    """
    arch_settings = {
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, *, groups=32, base_width=4, width_per_group=None, **kwargs):
        self.groups = groups
        self.base_width = resolve_alias('base_width', base_width, 4, 'width_per_group',
                                        width_per_group)
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(groups=self.groups, base_width=self.base_width,
                                      base_channels=self.base_channels, **kwargs)
