"""Make `type='ResNet'`, `'ResNeSt'`, ... in mmseg configs build mmresfamily's backbones."""
import mmseg.models  # noqa: F401  mmseg registers its own classes first (lazily), then we replace them
from mmseg.registry import MODELS

from . import override_backbones

OVERRIDDEN = override_backbones(MODELS)
