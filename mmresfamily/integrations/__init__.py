"""Opt-in imports that make a toolbox's unscoped backbone names build ours.

    custom_imports = dict(imports=['mmresfamily.integrations.mmdet'], allow_failed_imports=False)

Without them, use scoped names (`type='mmresfamily.ResNeSt'`), which work everywhere. A plain name
that the toolbox has itself keeps that toolbox's defaults where ours differ (each integration's
`TOOLBOX_DEFAULTS`), so its stock configs, which leave those arguments out, build what they
built before; docs/differences.md lists the rest.
"""
from typing import Dict, Optional

from mmengine.registry import Registry


def with_defaults(cls: type, defaults: dict):
    """A builder of `cls` (registered in its place) whose unset arguments take `defaults`."""

    def build(*args, **kwargs):
        return cls(*args, **{**defaults, **kwargs})

    build.__name__ = build.__qualname__ = cls.__name__
    build.__module__ = cls.__module__
    build.__doc__ = f'{cls.__name__} with these defaults: {defaults!r}\n\n{cls.__doc__ or ""}'
    build.__wrapped__ = cls  # inspect.signature and help() show the class's arguments
    return build


def override_backbones(registry: Registry,
                       toolbox_defaults: Optional[Dict[str, dict]] = None) -> list:
    """Register every mmresfamily backbone into `registry` under its plain name (replacing the
    toolbox's own class of that name), those in `toolbox_defaults` with those defaults.
    Returns the names."""
    from mmresfamily.models import backbones
    from mmresfamily.registry import MODELS
    toolbox_defaults = toolbox_defaults or {}
    unknown = set(toolbox_defaults) - set(MODELS.module_dict)
    if unknown:
        raise KeyError(f'toolbox defaults for backbones mmresfamily does not have: {unknown}')
    names = [name for name in backbones.__all__ if name in MODELS.module_dict]
    for name in names:
        module = MODELS.module_dict[name]
        if name in toolbox_defaults:
            module = with_defaults(module, toolbox_defaults[name])
        registry.register_module(name=name, module=module, force=True)
    return names
