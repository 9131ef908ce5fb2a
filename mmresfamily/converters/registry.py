from typing import Callable, Dict, Mapping, Tuple

import torch

from ..utils.state_dict import CheckpointMismatchError, check_state_dict_fits, unwrap_state_dict

# source name -> converter(model_name, state_dict) -> (state_dict, backbone_cfg, dropped_keys)
CONVERTERS: Dict[str, Callable] = {}


def register_converter(source: str):
    def wrap(fn):
        CONVERTERS[source] = fn
        return fn
    return wrap


def describe_cfg(cfg: dict) -> str:
    args = ', '.join(f'{k}={v!r}' for k, v in cfg.items() if k != 'type')
    return f'{cfg["type"]}({args})'


def check_converted(source: str, model_name: str, state_dict: dict, cfg: dict):
    """The converted weights must fit the backbone `cfg` names exactly (built on the meta
    device: shapes only, no memory); BN batch counters missing from old checkpoints are added
    (as a fresh BN holds them) so that strict loading works."""
    from ..registry import MODELS
    what = f'the {source} checkpoint converted as {model_name!r}'
    if not state_dict:
        raise CheckpointMismatchError(f'{what} holds no backbone tensors (an empty state dict)')
    with torch.device('meta'):
        model = MODELS.build(cfg)
    fit = check_state_dict_fits(model.state_dict(), state_dict, what, describe_cfg(cfg),
                                hint=f'Is the input a {source} {model_name} checkpoint?')
    for key in fit.tolerated:
        state_dict[key] = torch.zeros((), dtype=torch.long)


def convert(source: str, model_name: str, checkpoint: Mapping) -> Tuple[dict, dict, list]:
    """Convert, and refuse weights that do not fit the backbone they are converted for
    (CheckpointMismatchError naming missing / unexpected keys and shape mismatches)."""
    from . import load_all
    load_all()
    if source not in CONVERTERS:
        raise ValueError(f'source must be one of {sorted(CONVERTERS)}; got {source!r}')
    original = unwrap_state_dict(checkpoint)
    state_dict, cfg, dropped = CONVERTERS[source](model_name, original)
    try:
        check_converted(source, model_name, state_dict, cfg)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(f'{err}{fits_hint(original)}') from None
    return state_dict, cfg, dropped


def fits_hint(state: Mapping) -> str:
    """' They fit: ...' naming the table models / conversions these weights do fit, if any."""
    from ..zoo import fitting
    fits = fitting(state)
    return f' These weights fit: {"; ".join(fits)}.' if fits else \
        ' They fit no model of the table (python -m mmresfamily list).'

