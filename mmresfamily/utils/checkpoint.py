"""Loading mmengine runner checkpoints under torch >= 2.6 without giving up `weights_only`.

torch.load defaults to `weights_only=True`, which refuses mmengine 0.10.7 runner checkpoints:
their message hub holds `HistoryBuffer`s and numpy scalars. Rather than switch the protection
off, `trusted_runner_checkpoints()` allow-lists exactly the objects those checkpoints need, and
only while the runner resumes or loads a checkpoint. Anything else in a pickle is still refused.

One of them is narrow by construction. A HistoryBuffer pickles its statistics methods
(`HistoryBuffer.min`, ...) and pickle protocol 2 writes a class attribute as the opcodes
`GLOBAL builtins.getattr` + `REDUCE (HistoryBuffer, 'min')`. The real `getattr` must never be
allowed: with it a pickle walks from any allowed object to `exec` (`__globals__`,
`__builtins__`) and calls it through torch's own allowed `_rebuild_from_type_v2`, which calls
whatever it is handed. The name `builtins.getattr` is therefore bound to
`_history_buffer_getattr`, which returns those few methods and refuses everything else. A
HistoryBuffer's state also updates its class-wide statistics table, so that table is checked
after every load and restored if a pickle put anything else in it.
"""
import contextlib
import functools
import pickle

import numpy as np
import torch

# mmengine's built-in statistics, the only methods a HistoryBuffer pickles by reference
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


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


def _describe(obj) -> str:
    if isinstance(obj, type):
        return f'{obj.__module__}.{obj.__qualname__}'
    return f'a {type(obj).__name__} object'


def _history_buffer_getattr(obj, name):
    """`builtins.getattr` as runner checkpoints may use it: `HistoryBuffer.<statistic>` only."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) and name in HISTORY_BUFFER_STATISTICS:
        return HistoryBuffer.__dict__[name]
    shown = repr(name) if isinstance(name, str) else _describe(name)
    raise CheckpointRefusedError(
        f'checkpoint refused: its pickle asks for getattr({_describe(obj)}, {shown}); a runner '
        f'checkpoint may only name mmengine HistoryBuffer statistics '
        f'({", ".join(HISTORY_BUFFER_STATISTICS)}). It was not loaded.')


@functools.lru_cache(maxsize=None)
def runner_checkpoint_globals() -> tuple:
    """The globals an mmengine runner checkpoint needs beyond tensors and containers, as
    torch's `safe_globals` takes them (objects, or `(object, "module.name")` pairs)."""
    from mmengine.logging import HistoryBuffer
    return tuple([HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] +
                 _numpy_globals())


@contextlib.contextmanager
def _statistics_table_guard():
    """HistoryBuffer.__setstate__ merges the pickled methods into a class-wide dict: keep only
    mmengine's own functions there, whatever a checkpoint held."""
    from mmengine.logging import HistoryBuffer
    table = HistoryBuffer._statistics_methods
    before = dict(table)
    try:
        yield
    finally:
        injected = {k: v for k, v in table.items()
                    if before.get(k, HistoryBuffer.__dict__.get(k)) is not v}
        if injected:
            table.clear()
            table.update(before)
            raise CheckpointRefusedError(
                f'checkpoint refused: it puts {sorted(map(str, injected))} into mmengine\'s '
                f'HistoryBuffer statistics table; only mmengine\'s own methods may be there. '
                f'The table was restored.')


@contextlib.contextmanager
def trusted_runner_checkpoints():
    """Allow the runner-checkpoint globals for the `torch.load` calls inside this block.

    A refused pickle surfaces as CheckpointRefusedError naming the allow-list.
    """
    try:
        with torch.serialization.safe_globals(list(runner_checkpoint_globals())):
            with _statistics_table_guard():
                yield
    except pickle.UnpicklingError as err:
        if isinstance(err, CheckpointRefusedError):
            raise
        cause = err.__cause__ or err.__context__
        if isinstance(cause, CheckpointRefusedError):
            raise cause from None
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
