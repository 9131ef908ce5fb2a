"""Make `type='ResNet'`, `'ResNeSt'`, ... in mmdet configs build mmresfamily's backbones."""
import mmdet.models  # noqa: F401  mmdet registers its own classes first (lazily), then we replace them
from mmdet.registry import MODELS

from . import override_backbones

# mmdet's own defaults where ours differ; its stock configs leave norm_eval out in places
_RESNET = dict(norm_eval=True)
TOOLBOX_DEFAULTS = {
    'ResNet': _RESNET,
    'ResNetV1d': _RESNET,
    'ResNeXt': dict(_RESNET, groups=1),
    'ResNeSt': dict(_RESNET, stem_channels=64),
    'Res2Net': dict(_RESNET, stride1_pool=False),
}

OVERRIDDEN = override_backbones(MODELS, TOOLBOX_DEFAULTS)
