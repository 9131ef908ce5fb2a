"""Key maps from other codebases' checkpoints to mmresfamily backbones.

Every converter returns `(state_dict, backbone_cfg, dropped_keys)`: loading `state_dict` with
`strict=True` into `MODELS.build(backbone_cfg)` gives the source model's features.
"""
from .registry import CONVERTERS, convert

__all__ = ['CONVERTERS', 'convert']
