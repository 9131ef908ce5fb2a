"""Loading mmengine runner checkpoints under torch >= 2.6 without giving up `weights_only`.

torch.load defaults to `weights_only=True`, which refuses mmengine 0.10.7 runner checkpoints
(their message hub holds `HistoryBuffer`s and numpy scalars). Rather than switch the protection
off, we allow-list exactly those types, and only while the runner resumes or loads a checkpoint
(`getattr` is among them, since HistoryBuffer pickles its statistics methods through it, so it
must not be allowed for every load). Anything else in a pickle is still refused.
"""
import contextlib
import functools
import pickle

import numpy as np
import torch


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint holds an object outside the allow-list (possibly code that would run)."""


def _numpy_globals():
    """numpy objects a pickled array/scalar refers to, under numpy 1.x and 2.x module names."""
    multiarray = getattr(np, '_core', np.core).multiarray
    names = []
    for attr in ('_reconstruct', 'scalar'):
        fn = getattr(multiarray, attr)
        names += [(fn, f'numpy.core.multiarray.{attr}'), (fn, f'numpy._core.multiarray.{attr}')]
    dtype_classes = {type(np.dtype(t)) for t in
                     ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                      'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128')}
    return names + [np.ndarray, np.dtype] + sorted(dtype_classes, key=str)


@functools.lru_cache(maxsize=None)
def runner_checkpoint_globals() -> tuple:
    """The globals an mmengine runner checkpoint needs beyond tensors and containers."""
    from mmengine.logging import HistoryBuffer
    return tuple([HistoryBuffer, getattr] + _numpy_globals())


@contextlib.contextmanager
def trusted_runner_checkpoints():
    """Allow the runner-checkpoint globals for the `torch.load` calls inside this block.

    A refused pickle surfaces as CheckpointRefusedError naming the allow-list.
    """
    try:
        with torch.serialization.safe_globals(list(runner_checkpoint_globals())):
            yield
    except pickle.UnpicklingError as err:
        if isinstance(err, CheckpointRefusedError):
            raise
        raise CheckpointRefusedError(
            'checkpoint refused: it holds a pickled object outside the allow-list of mmengine '
            'runner checkpoints (tensors, containers, numpy arrays/scalars, mmengine '
            f'HistoryBuffer); it was not loaded. torch said: {err}') from err


def _wrap(method):
    @functools.wraps(method)
    def wrapped(*args, **kwargs):
        with trusted_runner_checkpoints():
            return method(*args, **kwargs)
    wrapped._mmrf_allowlisted = True
    return wrapped


def install_runner_checkpoint_allowlist():
    """Make mmengine's Runner.resume / Runner.load_checkpoint load under the allow-list.

    Idempotent; called by tools/train.py and tools/test.py.
    """
    from mmengine.runner import Runner
    for name in ('resume', 'load_checkpoint'):
        method = getattr(Runner, name)
        if not getattr(method, '_mmrf_allowlisted', False):
            setattr(Runner, name, _wrap(method))
