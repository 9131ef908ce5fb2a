"""Make `type='ResNet'`, `'ResNeSt'`, ... in mmseg configs build mmresfamily's backbones."""
import mmseg.models  # noqa: F401  mmseg registers its own classes first (lazily), then we replace them
from mmseg.registry import MODELS

from . import override_backbones

# mmseg's own defaults where ours differ (its stem is 64 wide whatever base_channels says)
_RESNET = dict(stem_channels=64)
TOOLBOX_DEFAULTS = {
    'ResNet': _RESNET,
    'ResNetV1c': _RESNET,
    'ResNetV1d': _RESNET,
    'ResNeXt': dict(_RESNET, groups=1),
    'ResNeSt': _RESNET,
}

OVERRIDDEN = override_backbones(MODELS, TOOLBOX_DEFAULTS)
