"""Runner checkpoints resume under torch's weights_only loading; a code-running pickle is refused."""
import os
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmresfamily.utils import (CheckpointRefusedError, install_runner_checkpoint_allowlist,
                               trusted_runner_checkpoints)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _Exploit(marker)}, bad)
    with pytest.raises(CheckpointRefusedError, match='allow-list'):
        with trusted_runner_checkpoints():
            torch.load(bad)
    assert not marker.exists()
    # and outside our context torch's own default refuses it too
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad)
    assert not marker.exists()


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
