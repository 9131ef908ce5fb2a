"""Make `type='ResNet'`, `'ResNeSt'`, ... in mmdet configs build mmresfamily's backbones."""
import mmdet.models  # noqa: F401  mmdet registers its own classes first (lazily), then we replace them
from mmdet.registry import MODELS

from . import override_backbones

OVERRIDDEN = override_backbones(MODELS)
