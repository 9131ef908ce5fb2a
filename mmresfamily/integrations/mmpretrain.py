"""Make `type='ResNet'`, `'ResNeSt'`, ... in mmpretrain configs build mmresfamily's backbones."""
import mmpretrain.models  # noqa: F401  mmpretrain registers its own classes first (lazily), then we replace them
from mmpretrain.registry import MODELS

from . import override_backbones

OVERRIDDEN = override_backbones(MODELS)
