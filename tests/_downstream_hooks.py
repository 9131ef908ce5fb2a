"""A test-only hook (imported by test configs through custom_imports): per-rank losses of every
iteration and the final weights, so tests can compare distributed, resumed and plain runs."""
import json
import os

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RecordRunHook(Hook):
    priority = 'VERY_LOW'

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, f'loss_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, loss=float(outputs['loss']))) + '\n')

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(model.state_dict(), os.path.join(self.out_dir, f'weights_rank{get_rank()}.pth'))
