"""State dicts taken out of checkpoints, and whether they fit a model.

One place for what several loaders need: unwrapping a checkpoint to its state dict, stripping a
`module.` (DataParallel) or `backbone.` prefix, and comparing keys and shapes with a model so that
a checkpoint that does not fit is refused with the keys that differ (torch and mmengine would load
half of it with a warning, or fail on the first shape).
"""
from dataclasses import dataclass, field
from typing import Iterable, List, Mapping, Optional, Tuple

import torch

# BN's batch counter: not a weight, absent from older checkpoints (torch < 0.4.1, torchvision's
# first ResNet releases); torch and mmengine load without it
COUNTER_KEYS = ('num_batches_tracked', )


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, or not fitting the model it is meant for."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint's keys or shapes differ from the model's."""


def strip_prefix(state: Mapping, prefix: str = 'module.') -> dict:
    """Remove `prefix` from the keys that start with it (others are kept as they are)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def select_prefix(state: Mapping, prefix: str) -> dict:
    """The entries under `prefix` (e.g. 'backbone.' of a whole detector), with it removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def key_prefixes(state: Mapping) -> List[str]:
    """The distinct first components of the keys ('backbone.', 'neck.', ...), to name in errors."""
    return sorted({k.split('.', 1)[0] + '.' for k in state})


def unwrap_state_dict(checkpoint, source: str = 'checkpoint') -> dict:
    """A bare state dict or the usual wrappers ('state_dict', 'model'), `module.` stripped."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{source} holds a {type(checkpoint).__name__}, not a state dict '
                              '(a mapping of parameter names to tensors)')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
    return strip_prefix(checkpoint)


def shape_of(value) -> Optional[Tuple[int, ...]]:
    shape = getattr(value, 'shape', None)
    return None if shape is None else tuple(shape)


def is_counter(key: str) -> bool:
    return key.rsplit('.', 1)[-1] in COUNTER_KEYS


def _listed(items: List[str], max_listed: int) -> str:
    more = f' ... (+{len(items) - max_listed} more)' if len(items) > max_listed else ''
    return ', '.join(items[:max_listed]) + more


@dataclass
class StateDictFit:
    """How a checkpoint's state dict lines up with a model's (keys in the model's naming).

    `tolerated`: model keys the checkpoint may lack (BN counters, modules the caller names as
    new); they keep the model's values.
    """
    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    tolerated: List[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def counts(self) -> str:
        return (f'{len(self.matched)} tensors fit, {len(self.missing)} missing, '
                f'{len(self.unexpected)} unexpected, {len(self.mismatched)} shape mismatches')

    def describe(self, max_listed: int = 5) -> str:
        """The differences, each with its count and the first few keys."""
        problems = []
        if self.missing:
            problems.append(f'{len(self.missing)} model keys missing from it: '
                            f'{_listed(self.missing, max_listed)}')
        if self.unexpected:
            problems.append(f'{len(self.unexpected)} keys the model lacks: '
                            f'{_listed(self.unexpected, max_listed)}')
        if self.mismatched:
            problems.append(f'{len(self.mismatched)} shape mismatches: ' + _listed(
                [f'{k} {theirs} vs model {ours}' for k, theirs, ours in self.mismatched],
                max_listed))
        return '; '.join(problems)

    def error(self, source: str, target: str, hint: str = '') -> CheckpointMismatchError:
        return CheckpointMismatchError(f'{source} does not match {target}: {self.describe()}'
                                       + (f'. {hint}' if hint else ''))


def compare_state_dicts(model_state: Mapping, state: Mapping,
                        may_lack: Iterable[str] = ()) -> StateDictFit:
    """Keys and shapes of `state` (a checkpoint's) against `model_state` (the model's, or any
    mapping of key -> tensor). `may_lack`: key prefixes of modules the checkpoint need not have."""
    may_lack = tuple(may_lack)
    fit = StateDictFit()
    for key, value in model_state.items():
        if key not in state:
            may_miss = is_counter(key) or key.startswith(may_lack)  # startswith(()) is False
            (fit.tolerated if may_miss else fit.missing).append(key)
        elif shape_of(state[key]) != shape_of(value):
            fit.mismatched.append((key, shape_of(state[key]), shape_of(value)))
        else:
            fit.matched.append(key)
    fit.unexpected = sorted(k for k in state if k not in model_state)
    fit.missing.sort()
    return fit


def check_state_dict_fits(model_state, state: Mapping, source: str, target: str = 'the model',
                          may_lack: Iterable[str] = (), hint: str = '') -> StateDictFit:
    """`compare_state_dicts`, raising CheckpointMismatchError unless the fit is exact.

    `model_state`: a module (its state dict; a DDP wrapper is seen through) or a mapping.
    `source` / `target` name the two sides in the message ('checkpoint PATH', 'the backbone').
    """
    if isinstance(model_state, torch.nn.Module):
        model_state = getattr(model_state, 'module', model_state).state_dict()
    fit = compare_state_dicts(model_state, state, may_lack)
    if not fit.exact:
        raise fit.error(source, target, hint)
    return fit
