"""Key maps from other codebases' checkpoints to mmresfamily backbones.

Every converter returns `(state_dict, backbone_cfg, dropped_keys)`: loading `state_dict` with
`strict=True` into `MODELS.build(backbone_cfg)` gives the source model's features.
"""
import importlib

from .registry import CONVERTERS, convert

# bumped whenever a key map changes: converted weights cached under an older version are redone
CONVERTER_VERSION = 1

# modules that register converters (timm families, other layouts); imported on first use
FAMILY_MODULES = ['timm', 'timm_dense', 'torchvision', 'openmmlab', 'official']


def load_all():
    for name in FAMILY_MODULES:
        importlib.import_module(f'{__name__}.{name}')


__all__ = ['CONVERTERS', 'CONVERTER_VERSION', 'convert', 'load_all']
