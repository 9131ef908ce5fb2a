from .base import BaseBackbone
from .preresnet import PreResNet
from .res2net import Res2Net
from .resnest import ResNeSt
from .resnet import BasicBlock, Bottleneck, ResLayer, ResNet, ResNetV1c, ResNetV1d
from .resnext import ResNeXt

__all__ = ['BaseBackbone', 'BasicBlock', 'Bottleneck', 'ResLayer', 'ResNet', 'ResNetV1c',
           'ResNetV1d', 'ResNeXt', 'ResNeSt', 'Res2Net', 'PreResNet']
