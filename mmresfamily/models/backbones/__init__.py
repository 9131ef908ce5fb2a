from .base import BaseBackbone
from .dcdc_resnet import DCDCResNet
from .densenet import DenseNet
from .dpn import DPN
from .hardnet import HarDNet
from .preresnet import PreResNet
from .rednet import RedNet
from .res2net import Res2Net
from .resnest import ResNeSt
from .resnet import BasicBlock, Bottleneck, ResLayer, ResNet, ResNetV1c, ResNetV1d
from .resnext import ResNeXt

__all__ = ['BaseBackbone', 'BasicBlock', 'Bottleneck', 'ResLayer', 'ResNet', 'ResNetV1c',
           'ResNetV1d', 'ResNeXt', 'ResNeSt', 'Res2Net', 'PreResNet']
__all__ += ['RedNet', 'DCDCResNet']
__all__ += ['DenseNet', 'DPN', 'HarDNet']
