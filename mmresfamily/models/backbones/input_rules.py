"""The inputs a built backbone can run: the spatial size of every stage's output for an input
size, derived from the layers the family built, and the forward check that refuses (naming the
rule) an input the stages cannot run -- not a tensor, wrong shape, empty batch, smaller than
`min_input_size`, or one image through BatchNorm in training with a 1x1 deepest map.
"""
from typing import List

import torch
import torch.nn as nn
from torch.nn.modules.utils import _pair

from ...errors import InvalidInputError

__all__ = ['InputRules', 'resampled_size']


def resampled_size(size: int, modules) -> int:
    """Spatial size after running `modules` in order (nn.Sequential containers are entered; of
    the other modules only windowed ones -- convs, deformable convs, pools: a kernel_size, stride
    and padding -- change the size); 0 once a window is larger than its padded input. Square
    kernels, strides and paddings, as every layer of this family has."""
    for module in modules:
        if size < 1:
            return 0
        if isinstance(module, nn.Sequential):
            size = resampled_size(size, module)
        elif all(hasattr(module, a) for a in ('kernel_size', 'stride', 'padding')):
            kernel, stride, padding, dilation = (_pair(getattr(module, a, 1))[0] for a in (
                'kernel_size', 'stride', 'padding', 'dilation'))
            span = size + 2 * padding - dilation * (kernel - 1) - 1
            if span < 0:
                return 0
            if getattr(module, 'ceil_mode', False):
                out = -(-span // stride) + 1
                # torch drops a last window that would start in the right padding
                size = out - 1 if (out - 1) * stride >= size + padding else out
            else:
                size = span // stride + 1
    return size


class InputRules:
    """Mixed into BaseBackbone: needs its `feature_info`, `stage_names`, `out_indices` and
    `in_channels`; `derive_input_rules` runs once the model is built."""

    def feature_sizes(self, size: int) -> List[int]:
        """Spatial size of every stage's output for an input `size` (one dimension; 0: the
        stage gets no pixels). Here every resampling layer pads to "same" (size / stride,
        rounded up: any size runs); families with unpadded pools override it with
        `chained_feature_sizes`."""
        return [-(-size // info['reduction']) for info in self.feature_info]

    def chained_feature_sizes(self, size: int, stem_layers) -> List[int]:
        """`feature_sizes` of a family whose stem layers and stages run as plain chains (see
        `resampled_size`)."""
        sizes = [resampled_size(size, stem_layers)]
        for name in self.stage_names:
            sizes.append(resampled_size(sizes[-1], getattr(self, name)))
        return sizes[1:]

    def derive_input_rules(self):
        """What `check_input` applies, from the stages up to the deepest in `out_indices`."""
        last = max(self.out_indices)
        self.last_stage = self.stage_names[last]
        self.min_input_size = self._smallest_size(lambda s: self.feature_sizes(s)[last] >= 1)
        # plain BatchNorm in the deepest stage run: in training it needs more than one value
        # per channel over the batch (SyncBN is left alone: its batch spans processes)
        norms = [m for m in getattr(self, self.last_stage).modules()
                 if isinstance(m, nn.BatchNorm2d)]
        # a tuple, not an attribute module: the norm stays registered only where it lives
        self._batch_norm_probe = tuple(norms[-1:])
        self._batch_norm_sees_pooled = any(getattr(m, 'pooled_input', False) for m in norms)

    @staticmethod
    def _smallest_size(fits, limit: int = 1 << 16) -> int:
        return next((s for s in range(1, limit) if fits(s)), limit)

    def check_input(self, x):
        """Refuse, with the reason, an input the stages cannot run (see `derive_input_rules`)."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            hint = (' (torch.from_numpy, as (N, C, H, W) float)'
                    if type(x).__module__ == 'numpy' else '')
            raise InvalidInputError(f'{name} expects a torch.Tensor of shape (N, {self.in_channels}'
                                    f', H, W){hint}; got {type(x).__module__}.'
                                    f'{type(x).__qualname__}')
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InvalidInputError(f'{name} expects input of shape (N, {self.in_channels}, H, W) '
                                    f'(in_channels={self.in_channels}); got {tuple(x.shape)}')
        batch, _, height, width = x.shape
        if batch == 0:
            raise InvalidInputError(f'{name} got an empty batch {tuple(x.shape)}; give at least '
                                    f'one image')
        if height < self.min_input_size or width < self.min_input_size:
            raise InvalidInputError(
                f'{name} needs H and W >= {self.min_input_size} to run its stages up to '
                f'{self.last_stage} (out_indices={self.out_indices}): a smaller input leaves a '
                f'stage with no pixels; got {height}x{width}')
        if batch == 1 and self._batch_norm_probe and self._batch_norm_probe[0].training:
            self._check_single_image_statistics(height, width)

    def _check_single_image_statistics(self, height: int, width: int):
        """Training BatchNorm normalises over batch and pixels: one image needs > 1 pixel."""
        remedy = 'use batch size >= 2, norm_eval=True or a batch-independent norm (GN)'
        if self._batch_norm_sees_pooled:
            raise InvalidInputError(
                f'{type(self).__name__} in training with BatchNorm needs batch size >= 2: its '
                f'split-attention norm sees one pooled value per image and channel; {remedy}')
        last = max(self.out_indices)
        if self.feature_sizes(height)[last] * self.feature_sizes(width)[last] == 1:
            needed = self._smallest_size(lambda s: self.feature_sizes(s)[last] >= 2)
            raise InvalidInputError(
                f'{type(self).__name__} in training with batch size 1 needs H or W >= {needed}: '
                f'at {height}x{width} the BatchNorm layers of {self.last_stage} see a single '
                f'value per channel (a 1x1 map); {remedy}')
