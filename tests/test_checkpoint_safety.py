"""Runner checkpoints resume under torch's weights_only loading; pickles that try to run code are
refused with a clear error and no side effect.

The payloads are built from objects whose `__reduce__` emits exactly the opcodes an attacker
would write (GLOBAL + REDUCE / BUILD), so each one is a real pickle that plain `pickle.load` would
run. The getattr chain is also shown to reach `exec` under a naive allow-list that admits the real
`getattr`, so the test that refuses it refuses a live exploit.
"""
import importlib
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmresfamily.utils import (
    CheckpointRefusedError,
    install_runner_checkpoint_allowlist,
    runner_checkpoint_globals,
    trusted_runner_checkpoints,
)
from mmresfamily.utils.checkpoint import HISTORY_BUFFER_STATISTICS


class Reduce:
    """Pickles as `fn(*args)` (GLOBAL fn, args, REDUCE), optionally followed by BUILD `state`."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def getattr_(obj, name):
    return Reduce(getattr, (obj, name))


def call(fn, result_type, *args):
    """Call any object on the unpickler's stack through torch's allowed _rebuild_from_type_v2."""
    return Reduce(torch._tensor._rebuild_from_type_v2, (fn, result_type, args, None))


def exec_chain(code):
    """getattr(HistoryBuffer.__init__, '__globals__')['__builtins__']['exec'](code)."""
    module_globals = getattr_(getattr_(HistoryBuffer, '__init__'), '__globals__')
    dict_get = getattr_(module_globals, 'get')
    builtins_dict = call(dict_get, getattr_(module_globals, '__class__'), '__builtins__')
    exec_fn = call(getattr_(builtins_dict, 'get'), getattr_(dict_get, '__class__'), 'exec')
    return call(exec_fn, getattr_(dict_get, '__class__'), code)


def write_marker(marker):
    return f'open({str(marker)!r}, "w").write("pwned")'


PAYLOADS = {
    'os.system': lambda m: Reduce(os.system, (f'touch {m}', )),
    'subprocess.call': lambda m: Reduce(subprocess.call, (['touch', str(m)], )),
    'builtins.exec': lambda m: Reduce(exec, (write_marker(m), )),
    'builtins.eval': lambda m: Reduce(eval, (write_marker(m), )),
    'importlib.import_module': lambda m: Reduce(importlib.import_module, ('os', )),
    'getattr chain to exec': lambda m: exec_chain(write_marker(m)),
    'getattr of a dunder': lambda m: getattr_(HistoryBuffer, '__init__'),
    'getattr past an allowed method': lambda m: getattr_(getattr_(HistoryBuffer, 'min'),
                                                         '__globals__'),
    'getattr on numpy': lambda m: getattr_(np.ndarray, 'tofile'),
    'nested in containers': lambda m: [{'a': (1, {'b': Reduce(os.system, (f'touch {m}', ))})}],
    'inside a HistoryBuffer state': lambda m: Reduce(
        HistoryBuffer, (), {'_log_history': Reduce(os.system, (f'touch {m}', ))}),
    'HistoryBuffer statistics table injection': lambda m: Reduce(
        HistoryBuffer, (), {'statistics_methods': {'mean': np.dtype, 'evil': np.ndarray}}),
}


def save_checkpoint(path, payload):
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {'hook_msgs': payload}}, path)
    return path


@pytest.mark.parametrize('name', sorted(PAYLOADS))
def test_payload_is_refused_without_side_effect(tmp_path, name):
    marker = tmp_path / 'pwned'
    bad = save_checkpoint(tmp_path / 'bad.pth', PAYLOADS[name](marker))
    HistoryBuffer()  # its __init__ fills the class-wide table with mmengine's own methods
    table = dict(HistoryBuffer._statistics_methods)
    with pytest.raises(CheckpointRefusedError, match='checkpoint refused'):
        with trusted_runner_checkpoints():
            torch.load(bad)
    assert not marker.exists()
    assert HistoryBuffer._statistics_methods == table
    # and outside our context torch's own default refuses it too
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad)
    assert not marker.exists()


def test_getattr_refusal_names_the_request(tmp_path):
    bad = save_checkpoint(tmp_path / 'bad.pth', getattr_(HistoryBuffer, '__init__'))
    with pytest.raises(CheckpointRefusedError,
                       match=r"getattr\(mmengine\.logging\.history_buffer\.HistoryBuffer, "
                             r"'__init__'\).*only name mmengine HistoryBuffer statistics"):
        with trusted_runner_checkpoints():
            torch.load(bad)


def test_exec_chain_is_live_under_a_naive_allow_list(tmp_path):
    """The control: admitting the real getattr (the old allow-list) runs the payload's code."""
    marker = tmp_path / 'pwned'
    bad = save_checkpoint(tmp_path / 'bad.pth', exec_chain(write_marker(marker)))
    with pytest.raises(AttributeError):  # exec returns None; torch then fails on None
        with torch.serialization.safe_globals([HistoryBuffer, getattr]):
            torch.load(bad)
    assert marker.read_text() == 'pwned'


def test_allow_list_holds_no_generic_callable():
    """Types, numpy's two array/scalar rebuilders and the narrow getattr stand-in: nothing that
    calls or looks up what the pickle names."""
    multiarray = getattr(np, '_core', np.core).multiarray
    rebuilders = {multiarray._reconstruct, multiarray.scalar}
    names = {}
    for entry in runner_checkpoint_globals():
        obj, name = entry if isinstance(entry, tuple) else (entry, None)
        assert obj not in (getattr, eval, exec, setattr, compile, __import__, os.system), entry
        assert isinstance(obj, type) or obj in rebuilders or name == 'builtins.getattr', entry
        if name is not None:
            names[name] = obj
    assert names['builtins.getattr'] is not getattr
    assert names['builtins.getattr'](HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(CheckpointRefusedError):
        names['builtins.getattr'](HistoryBuffer, '__init__')


def test_history_buffer_statistics_round_trip(tmp_path):
    """What the stand-in admits is exactly what a saved HistoryBuffer needs."""
    buf = HistoryBuffer()
    for v in (1.0, 3.0, 2.0):
        buf.update(v)
    path = tmp_path / 'hub.pth'
    torch.save({'buf': buf}, path)
    with trusted_runner_checkpoints():
        loaded = torch.load(path)['buf']
    assert [loaded.statistics(m) for m in HISTORY_BUFFER_STATISTICS] == [1.0, 3.0, 2.0, 2.0]


class _ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='loss'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out.squeeze(-1) - labels)**2).mean())
        return out


class _ToyData(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(2, generator=g)
        return dict(inputs=x, labels=x.sum())


class _CountIters(Hook):
    def __init__(self):
        self.iters = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iters.append(runner.iter)


def _runner(work_dir, max_iters, resume=False, hooks=()):
    return Runner(
        custom_hooks=list(hooks),
        model=_ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_ToyData(), sampler=dict(type='DefaultSampler',
                                                               shuffle=False),
                              batch_size=2, num_workers=0, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        resume=resume, default_scope='mmengine', randomness=dict(seed=0),
        log_level='WARNING')


def test_runner_checkpoint_resumes_with_weights_only(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.exists()
    # plain torch.load (weights_only=True) refuses mmengine's checkpoint ...
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt)
    # ... our allow-list loads it, and resume continues from iteration 2
    install_runner_checkpoint_allowlist()
    counter = _CountIters()
    runner = _runner(tmp_path, max_iters=4, resume=True, hooks=[counter])
    runner.train()
    # runner.iter is 0-based during the iteration: [2, 3] = the 3rd and 4th, after the resume
    assert counter.iters == [2, 3], counter.iters
    assert runner.iter == 4
    assert (tmp_path / 'iter_4.pth').exists()


def _entry_points():
    """Every place that loads a file under the runner-checkpoint allow-list."""
    from mmresfamily.cli import main as cli
    from mmresfamily.publish import main as publish_main
    from mmresfamily.transfer.backbones import backbone_weights
    from mmresfamily.utils.launch import check_checkpoint_matches

    def convert(bad, tmp_path):
        cli(['convert', 'mmdet', 'resnet50', str(bad), str(tmp_path / 'o.pth')])

    def publish(bad, tmp_path):
        publish_main([str(bad), str(tmp_path / 'out')])

    def test_tool(bad, tmp_path):  # tools/test.py checks the checkpoint against the model
        check_checkpoint_matches(nn.Linear(1, 1), str(bad))

    def coco_transfer(bad, tmp_path):
        backbone_weights('b', bad, nn.Linear(1, 1), tmp_path / 'o.pth')

    def resume(bad, tmp_path):  # tools/train.py --resume
        install_runner_checkpoint_allowlist()
        runner = _runner(tmp_path / 'work', max_iters=1)
        runner.resume(str(bad))

    return dict(convert_weights=convert, publish_backbone=publish, test=test_tool,
                coco_transfer=coco_transfer, train_resume=resume)


@pytest.mark.parametrize('entry', sorted(_entry_points()))
def test_exec_chain_is_refused_by_every_entry_point(tmp_path, entry):
    marker = tmp_path / 'pwned'
    bad = save_checkpoint(tmp_path / 'bad.pth', exec_chain(write_marker(marker)))
    with pytest.raises(CheckpointRefusedError, match='getattr'):
        _entry_points()[entry](bad, tmp_path)
    assert not marker.exists()
