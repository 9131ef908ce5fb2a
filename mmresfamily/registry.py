"""The `mmresfamily` scope of MMEngine's model registry.

A child of MMEngine's root MODELS, so `type='mmresfamily.ResNeSt'` resolves from any other scope
(mmdet, mmseg, mmpretrain): mmengine imports this module, finds the child registry named by the
scope and imports its `locations`. Layers registered at the root by mmcv (BN, GN, DCNv2, plugins)
stay reachable from here through the parent.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmresfamily', locations=['mmresfamily.models'])

__all__ = ['MODELS']
