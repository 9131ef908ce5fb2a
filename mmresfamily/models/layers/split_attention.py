"""Split attention (ResNeSt, Zhang et al. 2020) in radix-major layout.

Channels of the radix-expanded conv are laid out as (radix, groups * channels), which is the layout
of timm, mmdet and the official code, so their checkpoints load unchanged.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer

from ...errors import InvalidArgumentError, check_int
from .builders import conv_layer_cfg
from .norm import build_norm


class SplitAttentionConv2d(nn.Module):
    """conv(radix*C) -> norm0 -> relu -> per-split attention from the pooled sum of splits.

    Keys: conv, bn0, fc1, bn1, fc2 (norm names follow `norm_cfg`: BN gives bn0/bn1).

    The norm after fc1 sees one pooled vector per image: BatchNorm there needs batches of two or
    more in training, and GroupNorm uses one group over the whole vector, so the attention
    depends on the input at any batch size (`layers/norm.py`).
    """

    def __init__(self, in_channels, channels, kernel_size=3, stride=1, padding=1, dilation=1,
                 groups=1, radix=2, reduction_factor=4, conv_cfg=None, norm_cfg=dict(type='BN'),
                 dcn=None):
        super().__init__()
        self.radix = radix = check_int('radix', radix)
        self.groups = groups = check_int('groups', groups)
        reduction_factor = check_int('reduction_factor', reduction_factor)
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        if inter_channels % groups:
            raise InvalidArgumentError(
                f'groups={groups} must divide the split attention\'s {inter_channels} inner '
                f'channels (max({in_channels} * radix={radix} // reduction_factor='
                f'{reduction_factor}, 32))')
        self.channels = channels
        self.conv = build_conv_layer(conv_layer_cfg(conv_cfg, dcn, in_channels, stride),
                                     in_channels, channels * radix, kernel_size, stride=stride,
                                     padding=padding, dilation=dilation, groups=groups * radix,
                                     bias=False)
        self.norm0_name, norm0 = build_norm(norm_cfg, channels * radix, postfix=0)
        self.add_module(self.norm0_name, norm0)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter_channels, 1, groups=groups)
        self.norm1_name, norm1 = build_norm(norm_cfg, inter_channels, postfix=1,
                                            pooled_input=True)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = nn.Conv2d(inter_channels, channels * radix, 1, groups=groups)

    def _attention(self, logits: torch.Tensor) -> torch.Tensor:
        batch = logits.size(0)
        if self.radix > 1:
            # softmax across the radix splits of each group (the "r-softmax")
            logits = logits.view(batch, self.groups, self.radix, -1).transpose(1, 2)
            return F.softmax(logits, dim=1).reshape(batch, -1, 1, 1)
        return torch.sigmoid(logits)

    def forward(self, x):
        x = self.relu(getattr(self, self.norm0_name)(self.conv(x)))
        batch = x.size(0)
        # pool, then add the splits: the mean is linear, so this equals pooling their sum
        # without allocating the summed full-size map (timm/mmdet do sum, then pool)
        gap = F.adaptive_avg_pool2d(x, 1)
        if self.radix > 1:
            gap = gap.view(batch, self.radix, -1, 1, 1).sum(dim=1)
        gap = self.relu(getattr(self, self.norm1_name)(self.fc1(gap)))
        atten = self._attention(self.fc2(gap))
        if self.radix == 1:
            return x * atten
        splits = x.view(batch, self.radix, -1, x.size(2), x.size(3))
        atten = atten.view(batch, self.radix, -1, 1, 1)
        # the weighted sum split by split, accumulated in place: no radix-sized product tensor
        out = splits[:, 0] * atten[:, 0]
        for r in range(1, self.radix):
            out.addcmul_(splits[:, r], atten[:, r])
        return out
