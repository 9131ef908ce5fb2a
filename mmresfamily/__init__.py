"""mmresfamily: the ResNet family of vision backbones as an OpenMMLab plugin."""
__version__ = '0.1.0'

from . import models  # noqa: E402,F401  (registers every backbone)
from .errors import ArgumentTypeError, InvalidArgumentError, InvalidInputError, UnknownChoiceError  # noqa: E402
from .registry import MODELS  # noqa: E402
from .weights import register_schemes  # noqa: E402

register_schemes()  # timm:// official:// mmrf:// and a verified torchvision://

__all__ = ['MODELS', '__version__', 'InvalidArgumentError', 'UnknownChoiceError',
           'ArgumentTypeError', 'InvalidInputError']
