"""Loading pretrained weights into a module, refusing a checkpoint that does not fit.

mmengine's `PretrainedInit` loads with `strict=False`: ResNet-18 weights "load" into a ResNet-50
with a logged warning and the model trains from a random start. `load_pretrained` checks the fit
first and refuses with the keys and shapes that differ, unless `strict=False` asks for a
deliberate partial load (then what fits is loaded and the rest counted in the log).
"""
import logging
import os
from typing import Iterable, Optional

from mmengine.logging import print_log

from .checkpoint import trusted_runner_checkpoints
from .checkpoint_file import load_checkpoint_file
from .state_dict import (
    CheckpointError,
    StateDictFit,
    compare_state_dicts,
    key_prefixes,
    select_prefix,
    unwrap_state_dict,
)

# the keys a `Pretrained` init_cfg may hold (mmengine's, plus `strict`)
PRETRAINED_CFG_KEYS = ('type', 'checkpoint', 'prefix', 'map_location', 'strict')


def read_checkpoint(filename: str, map_location='cpu'):
    """A checkpoint from a local path or any URI scheme registered with mmengine's
    CheckpointLoader (torchvision://, open-mmlab://, http(s)://, ...), under the runner-checkpoint
    allow-list (whole detectors / classifiers saved by a runner hold mmengine objects).

    Local files are read by `load_checkpoint_file` (what mmengine's local loader does, plus
    safetensors and errors that say what a bad file is)."""
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
    if CheckpointLoader._get_checkpoint_loader(filename) is load_from_local:
        return load_checkpoint_file(filename, map_location, runner_checkpoint=True)
    with trusted_runner_checkpoints():
        return CheckpointLoader.load_checkpoint(filename, map_location)


def _prefix_hint(state: dict, model_state: dict) -> str:
    """Suggest the prefix when the model's keys are in the checkpoint under one."""
    for prefix in key_prefixes(state):
        if any(prefix + k in state for k in model_state):
            return f"its keys start with {prefix!r}: set prefix={prefix!r}"
    return ''


def load_pretrained(module, checkpoint: str, prefix: Optional[str] = None, strict: bool = True,
                    map_location='cpu', may_lack: Iterable[str] = (),
                    logger='current') -> StateDictFit:
    """Load `checkpoint` (a path or URI) into `module`.

    The state dict is unwrapped ('state_dict' / 'model'), `module.` is stripped, and with `prefix`
    (e.g. 'backbone.' of a whole detector) only the keys under it are kept. `strict=True` refuses a
    checkpoint whose keys or shapes differ from the module's (CheckpointMismatchError naming them);
    `strict=False` loads what fits. `may_lack`: key prefixes of modules the checkpoint need not
    have (they keep their initialisation); BN batch counters may always be absent.
    Returns the fit; logs the source, the tensors loaded and what did not fit.
    """
    source = f'checkpoint {checkpoint}'
    state = unwrap_state_dict(read_checkpoint(checkpoint, map_location), source)
    state = {k: v for k, v in state.items() if hasattr(v, 'shape')}  # tensors only
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        selected = select_prefix(state, prefix)
        if not selected:
            raise CheckpointError(f'{source} has no key starting with prefix={prefix!r}; its keys '
                                  f'start with: {", ".join(key_prefixes(state)) or "(none)"}')
        state, source = selected, f'{source} (prefix {prefix!r})'
    model_state = module.state_dict()
    # an ImageNet classifier's head (fc., head., classifier.) is not part of the backbone:
    # keys of modules the module does not have are set aside, not counted against the fit
    # (a checkpoint of another architecture still fails on the keys it lacks)
    own = {name for name, _ in module.named_children()}
    foreign = sorted({k.split('.', 1)[0] for k in state if k.split('.', 1)[0] not in own})
    fitting_state = {k: v for k, v in state.items() if k.split('.', 1)[0] in own}
    fit = compare_state_dicts(model_state, fitting_state, may_lack)
    target = type(module).__name__
    if strict and not fit.exact:
        from ..converters.registry import fits_hint
        hint = _prefix_hint(state, model_state) if not fit.matched else ''
        raise fit.error(source, target, (f'Hint: {hint}. ' if hint else '')
                        + 'strict=False (e.g. in the Pretrained init_cfg) loads only what fits.'
                        + fits_hint(state))
    module.load_state_dict({k: state[k] for k in fit.matched}, strict=False)
    if foreign and fit.matched:
        print_log(f'load_pretrained: {target} has no module {", ".join(foreign)}: '
                  f'{len(state) - len(fitting_state)} tensors of the checkpoint set aside',
                  logger=logger)
    print_log(f'load_pretrained: {target} from {source}: loaded {len(fit.matched)} tensors; '
              f'{len(fit.missing)} missing, {len(fit.unexpected)} unexpected, '
              f'{len(fit.mismatched)} shape mismatches'
              + (f', {len(fit.tolerated)} not in the checkpoint by design (BN counters, new '
                 'modules) keep their initialisation' if fit.tolerated else ''),
              logger=logger)
    if not fit.exact:
        print_log(f'load_pretrained (strict=False): {target} from {source}: not loaded: '
                  f'{fit.describe()}', logger=logger, level=logging.WARNING)
    return fit


def pretrained_kwargs(init_cfg: dict) -> dict:
    """The `load_pretrained` arguments of a `Pretrained` init_cfg (unknown keys refused)."""
    unknown = sorted(set(init_cfg) - set(PRETRAINED_CFG_KEYS))
    if unknown:
        raise ValueError(f'init_cfg of type Pretrained takes the keys {PRETRAINED_CFG_KEYS}; '
                         f'got {unknown}')
    checkpoint = init_cfg.get('checkpoint')
    if not isinstance(checkpoint, (str, os.PathLike)) or not str(checkpoint):
        raise ValueError(f'init_cfg of type Pretrained needs checkpoint=PATH_OR_URI; got '
                         f'{checkpoint!r}')
    return dict({k: v for k, v in init_cfg.items() if k != 'type'}, checkpoint=str(checkpoint))
