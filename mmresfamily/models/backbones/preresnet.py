"""Pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks").

Blocks run norm -> relu -> conv, keep the shortcut an identity and add without a final
activation; projection shortcuts take the pre-activated input. Stage outputs are therefore
un-normalised: with `out_norm=True` (default) each emitted feature passes through its own
norm + relu, as dense-prediction heads expect; `out_norm=False` hands out the raw stage outputs
(timm's `resnetv2` features). The last stage's out-norm is the final norm of the classifier.
"""
import torch.nn as nn
from mmcv.cnn import build_conv_layer
from torch.nn import init

from ...errors import check_flag
from ...registry import MODELS
from ..layers.builders import forward_plugins
from ..layers.norm import norm_layer
from ..layers.pooling import MaxPool2d
from .resnet import BasicBlock, Bottleneck, ResNet


class _PreActivation:
    """Mixin: pre-activation ordering for a v1 block class (same layers, other order)."""
    act_after_merge = False
    shortcut_norm = False

    def _inner_forward(self, x):
        preact = self.relu(self.norm1(x))
        identity = x if self.downsample is None else self.downsample(preact)
        return self.merge(self.residual(preact), identity)


class PreActBasicBlock(_PreActivation, BasicBlock):
    """bn1-relu-conv1(3x3, stride) -> bn2-relu-conv2(3x3)."""

    def __init__(self, inplanes, planes, **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        # norm1 acts on the block input; norm2 on conv1's output
        self.add_norm(1, inplanes)

    def residual(self, x):
        return self.conv2(self.relu(self.norm2(self.conv1(x))))

    def zero_init_last(self):
        init.zeros_(self.conv2.weight)


class PreActBottleneck(_PreActivation, Bottleneck):
    """bn1-relu-conv1(1x1) -> bn2-relu-conv2(3x3, stride) -> bn3-relu-conv3(1x1)."""

    def __init__(self, inplanes, planes, **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        self.add_norm(1, inplanes)
        self.add_norm(3, self.width)

    def residual(self, x):
        names = self.plugin_names
        out = forward_plugins(self, self.conv1(x), names['after_conv1'])
        out = forward_plugins(self, self.conv2(self.relu(self.norm2(out))), names['after_conv2'])
        return forward_plugins(self, self.conv3(self.relu(self.norm3(out))), names['after_conv3'])

    def zero_init_last(self):
        init.zeros_(self.conv3.weight)


@MODELS.register_module()
class PreResNet(ResNet):
    """Pre-activation ResNet-18/34/50/101/152 (timm `resnetv2_*` with BatchNorm)."""
    arch_settings = {
        18: (PreActBasicBlock, (2, 2, 2, 2)),
        34: (PreActBasicBlock, (3, 4, 6, 3)),
        50: (PreActBottleneck, (3, 4, 6, 3)),
        101: (PreActBottleneck, (3, 4, 23, 3)),
        152: (PreActBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, *, out_norm=True, **kwargs):
        self.out_norm = check_flag('out_norm', out_norm)
        super().__init__(**kwargs)
        if out_norm:
            for i in self.out_indices:
                name = f'out_norm{i + 1}'
                self.add_module(name, norm_layer(self.norm_cfg, self.feature_info[i]['num_chs']))

    def build_stem(self):
        """Conv stem without a closing norm: the first block pre-activates its input."""
        in_ch, out_ch = self.in_channels, self.stem_channels
        if self.deep_stem:
            mid = out_ch // 2
            self.stem = nn.Sequential(
                build_conv_layer(self.conv_cfg, in_ch, mid, 3, stride=2, padding=1, bias=False),
                norm_layer(self.norm_cfg, mid), nn.ReLU(inplace=True),
                build_conv_layer(self.conv_cfg, mid, mid, 3, padding=1, bias=False),
                norm_layer(self.norm_cfg, mid), nn.ReLU(inplace=True),
                build_conv_layer(self.conv_cfg, mid, out_ch, 3, padding=1, bias=False))
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_ch, out_ch, 7, stride=2, padding=3,
                                          bias=False)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward_stem(self, x):
        return self.maxpool(self.stem(x) if self.deep_stem else self.conv1(x))

    def stem_modules(self):
        return [self.stem] if self.deep_stem else [self.conv1]

    def frozen_modules(self):
        modules = super().frozen_modules()
        # the out-norm of a frozen stage is frozen with it
        modules += [getattr(self, f'out_norm{i + 1}') for i in range(self.frozen_stages)
                    if hasattr(self, f'out_norm{i + 1}')]
        return modules

    def emit(self, stage_index, x):
        if not self.out_norm:
            return x
        return nn.functional.relu(getattr(self, f'out_norm{stage_index + 1}')(x))
