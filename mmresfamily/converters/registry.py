from typing import Callable, Dict, Mapping, Tuple

import torch

# source name -> converter(model_name, state_dict) -> (state_dict, backbone_cfg, dropped_keys)
CONVERTERS: Dict[str, Callable] = {}


def register_converter(source: str):
    def wrap(fn):
        CONVERTERS[source] = fn
        return fn
    return wrap


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """Accept a bare state_dict or the usual wrappers ('state_dict', 'model')."""
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in checkpoint.items()}


def convert(source: str, model_name: str, checkpoint: Mapping) -> Tuple[dict, dict, list]:
    from . import load_all
    load_all()
    if source not in CONVERTERS:
        raise ValueError(f'source must be one of {sorted(CONVERTERS)}; got {source!r}')
    return CONVERTERS[source](model_name, unwrap_state_dict(checkpoint))
