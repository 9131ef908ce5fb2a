"""Opt-in imports that make a toolbox's unscoped backbone names build ours.

    custom_imports = dict(imports=['mmresfamily.integrations.mmdet'], allow_failed_imports=False)

Without them, use scoped names (`type='mmresfamily.ResNeSt'`), which work everywhere.
"""
from mmengine.registry import Registry


def override_backbones(registry: Registry) -> list:
    """Register every mmresfamily backbone into `registry` under its plain name (replacing the
    toolbox's own class of that name). Returns the names."""
    from mmresfamily.models import backbones
    from mmresfamily.registry import MODELS
    names = [name for name in backbones.__all__ if name in MODELS.module_dict]
    for name in names:
        registry.register_module(name=name, module=MODELS.module_dict[name], force=True)
    return names
