"""Make `type='ResNet'`, `'ResNeSt'`, ... in mmpretrain configs build mmresfamily's backbones."""
import mmpretrain.models  # noqa: F401  mmpretrain registers its own classes first (lazily), then we replace them
from mmpretrain.registry import MODELS

from . import override_backbones

# mmpretrain's own defaults where ours differ: its classifiers (and self-supervised configs)
# rely on the backbone emitting the last stage only
_RESNET = dict(out_indices=(3, ), stem_channels=64)
TOOLBOX_DEFAULTS = {
    'ResNet': _RESNET,
    'ResNetV1c': _RESNET,
    'ResNetV1d': _RESNET,
    'ResNeXt': _RESNET,
    'ResNeSt': _RESNET,
    'Res2Net': _RESNET,
    'DenseNet': dict(out_indices=-1),
}

OVERRIDDEN = override_backbones(MODELS, TOOLBOX_DEFAULTS)
