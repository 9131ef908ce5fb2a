"""Dual Complementary Dynamic Convolution (DCDC; Yan, Qin, Liu & Chen 2022, arXiv 2211.06163).

Two branches on the same input, outputs summed:

* local spatial-adaptive (LSA): a kernel per location, generated from the features there -- what
  differs between individuals;
* global shift-invariant (GSI): one kernel per sample, predicted from global context and shared
  by every location -- what is shared across a scene.

No code was published. Only the abstract and third-party summaries of the paper were available
to us (not its method section), so this is built from the two-branch description above. The
choices the available text leaves open, all exposed as arguments where that is cheap:

1. LSA is an involution (`Involution`, Li et al. 2021): 1x1 reduce (C -> C/r) -> norm -> act ->
   1x1 (-> K^2 * C/group_channels), one kernel shared by `group_channels` (16) channels, kernels
   of a strided output generated from the average-pooled input.
2. GSI is depthwise by default (`global_group_channels=1`): the kernel is predicted once per
   sample, so one per channel costs no extra multiply-adds over a shared one, only generator
   parameters. Its generator is SE-like: global average pool -> 1x1 (C -> C/r, bias) -> act ->
   1x1 (-> K^2 * C/global_group_channels, bias). No norm there: a batch norm over one pooled
   vector per sample is degenerate at batch size 1 (detection/segmentation batches). The last
   bias is the sample-agnostic part of the kernel, so GSI contains a static depthwise conv.
3. Both branches use the same K (3 by default: DCDC replaces a 3x3 conv), stride, dilation and
   "same" padding, so their outputs align; the two generators are separate (no shared reduction).
4. The outputs are summed as they are: no learned branch weights, no kernel normalisation
   (softmax, etc.); the block's own norm after the operator scales the sum.
5. Neither branch mixes channels (both are per-channel / per-group spatial filters); in a
   bottleneck the 1x1 convs around it do that, as in RedNet.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from .capture import is_capturing_graph
from .involution import Involution, check_dynamic_kernel_args


def per_sample_conv(x: torch.Tensor, kernels: torch.Tensor, stride: int = 1,
                    dilation: int = 1) -> torch.Tensor:
    """Each sample's (groups, K, K) kernels applied to its channels (channels // groups per
    kernel) with "same" padding: a per-sample grouped convolution, channels not mixed."""
    if is_capturing_graph(x):
        return _per_sample_conv_taps(x, kernels, stride, dilation)
    batch, channels, height, width = x.shape
    groups, k = kernels.shape[1], kernels.shape[-1]
    weight = kernels.unsqueeze(2).expand(batch, groups, channels // groups, k, k)
    # fold the batch into the groups: one depthwise conv runs every sample's own kernel
    out = F.conv2d(x.reshape(1, batch * channels, height, width),
                   weight.reshape(batch * channels, 1, k, k), stride=stride,
                   padding=dilation * (k - 1) // 2, dilation=dilation, groups=batch * channels)
    return out.view(batch, channels, *out.shape[-2:])


def _per_sample_conv_taps(x, kernels, stride, dilation):
    """`per_sample_conv` as K*K shifted multiply-adds, for captured graphs: the folded conv's
    group count is batch * channels, a constant in a trace and a dynamic conv attribute that
    ONNX cannot express. Each tap reads a strided window of the padded input."""
    groups, k = kernels.shape[1], kernels.shape[-1]
    height, width = x.shape[-2:]
    padding = dilation * (k - 1) // 2
    padded = F.pad(x, (padding, padding, padding, padding))
    padded = padded.view(x.shape[0], groups, x.shape[1] // groups, *padded.shape[-2:])
    weights = kernels.unsqueeze(2)  # (N, groups, 1, K, K): shared by the group's channels
    out = 0
    for i in range(k):
        for j in range(k):
            # rows i*d, i*d + stride, ... : ceil(H / stride) of them, as the conv's output
            tap = padded[..., i * dilation:i * dilation + height:stride,
                         j * dilation:j * dilation + width:stride]
            out = out + tap * weights[..., i:i + 1, j:j + 1]
    return out.flatten(1, 2)


# torch.fx.symbolic_trace records the call as one node (it unpacks sizes in Python)
torch.fx.wrap('per_sample_conv')


class GlobalKernelConv(nn.Module):
    """GSI branch: a K x K kernel per sample and channel group, predicted from the globally
    pooled input and applied at every location (a per-sample grouped convolution).

    Keys: fc1.conv, fc2.conv.
    """

    def __init__(self, channels, kernel_size=3, stride=1, dilation=1, group_channels=1,
                 reduction_ratio=4, conv_cfg=None, act_cfg=dict(type='ReLU')):
        super().__init__()
        check_dynamic_kernel_args(channels, kernel_size, group_channels, reduction_ratio,
                                  'global_group_channels')
        self.channels, self.kernel_size = channels, kernel_size
        self.stride, self.dilation = stride, dilation
        self.group_channels = group_channels
        self.groups = channels // group_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = ConvModule(channels, channels // reduction_ratio, 1, conv_cfg=conv_cfg,
                              norm_cfg=None, act_cfg=act_cfg)
        self.fc2 = ConvModule(channels // reduction_ratio, kernel_size**2 * self.groups, 1,
                              conv_cfg=conv_cfg, norm_cfg=None, act_cfg=None)

    def generate_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """(N, groups, K, K): one kernel per sample and channel group."""
        kernels = self.fc2(self.fc1(self.pool(x)))
        return kernels.view(x.shape[0], self.groups, self.kernel_size, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_sample_conv(x, self.generate_kernels(x).to(x.dtype), self.stride,
                               self.dilation)

    def extra_repr(self):
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, dilation={self.dilation}, groups={self.groups}')


class DCDC(nn.Module):
    """Dual complementary dynamic convolution: `local_branch(x) + global_branch(x)`.

    Args:
        channels: input = output channels.
        kernel_size: odd K of both branches' kernels (3: it replaces a 3x3 conv).
        stride, dilation: of both branches.
        group_channels: channels sharing one location-specific kernel in the LSA branch.
        global_group_channels: channels sharing one sample-specific kernel in the GSI branch
            (1: depthwise).
        reduction_ratio: channel reduction in both kernel generators.
        conv_cfg, norm_cfg, act_cfg: of the generators (only LSA has a norm, see module doc).
    """

    def __init__(self, channels, kernel_size=3, stride=1, dilation=1, group_channels=16,
                 global_group_channels=1, reduction_ratio=4, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')):
        super().__init__()
        self.local_branch = Involution(channels, kernel_size, stride, dilation, group_channels,
                                       reduction_ratio, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                       act_cfg=act_cfg)
        self.global_branch = GlobalKernelConv(channels, kernel_size, stride, dilation,
                                              global_group_channels, reduction_ratio,
                                              conv_cfg=conv_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_branch(x) + self.global_branch(x)
